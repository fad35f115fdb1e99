"""``DynamicMemoryLayer``: a memory layer that collects garbage every few steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma import collect_garbage
from nma.layers import DynamicMemoryLayer
from tests.api.training import train_losses, went_down


def test_collects_garbage_every_few_steps_as_by_hand() -> None:
    torch.manual_seed(0)
    layer = DynamicMemoryLayer(3, "dnc", collect_every=2, threshold=0.2,
                               memory_options={"slots": 6, "width": 4})  # fmt: skip
    inputs = torch.randn(5, 2, 3)
    reads, state = layer(inputs, return_state=True)
    by_hand = layer.memory.initial_state(2, torch.device("cpu"), torch.float32)
    expected = []
    for t, interface in enumerate(layer.interface(inputs), start=1):
        read, by_hand = layer.memory(interface, by_hand)
        expected.append(read)
        if t % 2 == 0:
            by_hand, live = collect_garbage(layer.memory, by_hand, 0.2)
    assert torch.allclose(reads, torch.stack(expected))
    assert torch.equal(layer.live, live) and torch.allclose(state.usage, by_hand.usage)
    plain = DynamicMemoryLayer(3, "dnc", collect_every=100, memory_options={"slots": 6, "width": 4})
    plain.load_state_dict(layer.state_dict())
    assert not torch.allclose(plain(inputs), reads)  # the collection did change the run


def test_dynamic_layer_needs_a_memory_with_usage() -> None:
    with pytest.raises(ValueError, match="usage"):
        DynamicMemoryLayer(3, "ntm")


def test_dynamic_layer_inside_a_users_module_learns() -> None:
    class Dynamic(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layer = DynamicMemoryLayer(8, "lrua", collect_every=3, batch_first=True,
                                            memory_options={"slots": 8, "width": 6})  # fmt: skip
            self.out = nn.Linear(8 + self.layer.output_size, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([x, self.layer(x)], dim=-1))

    torch.manual_seed(0)
    model = Dynamic()
    assert went_down(train_losses(model, list(model.parameters())))
