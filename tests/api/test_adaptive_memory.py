"""``AdaptiveMemory``: slots double after a full sequence and halve after an empty one."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma.layers import AdaptiveMemory, MemoryLayer
from tests.api.training import train_losses, went_down

KV = {"width": 2, "key_size": 2, "read_heads": 1}  # interface: key 2 | value 2 | gate | query 2


def _sequence(memory: AdaptiveMemory, gate: float, steps: int) -> None:
    state = memory.initial_state(1, torch.device("cpu"), torch.float32)
    for _ in range(steps):
        interface = torch.randn(1, memory.interface_size)
        interface[:, 4] = gate  # the kv write gate: the written slot's presence
        _, state = memory(interface, state)


def test_slots_grow_with_use_and_shrink_without() -> None:
    torch.manual_seed(0)
    memory = AdaptiveMemory("kv", KV, min_slots=2, max_slots=8, threshold=0.5)
    assert memory.slots == 2
    _sequence(memory, 20.0, steps=4)  # every slot written: fill 1
    _sequence(memory, 20.0, steps=4)  # resized to 4 at its start; fill 1 again
    assert memory.slots == 4 and memory.memory.config.slots == 4
    _sequence(memory, 20.0, steps=2)  # 8 slots now, 2 written: fill 0.25
    assert memory.slots == 8
    _sequence(memory, -20.0, steps=3)  # nothing present: fill 0
    memory.initial_state(1, torch.device("cpu"), torch.float32)
    assert memory.slots == 4
    memory.eval()
    _sequence(memory, -20.0, steps=3)
    memory.initial_state(1, torch.device("cpu"), torch.float32)
    assert memory.slots == 4  # no resizing in evaluation mode


def test_adaptive_memory_needs_usage_and_slot_free_parameters() -> None:
    with pytest.raises(ValueError, match="usage"):
        AdaptiveMemory("associative", {"width": 4}, min_slots=4, max_slots=8)
    with pytest.raises(ValueError, match="parameters"):
        AdaptiveMemory("ntm", {"width": 4}, min_slots=4, max_slots=8)
    with pytest.raises(ValueError, match="'slots'"):
        AdaptiveMemory("neural", {"width": 4})


def test_adaptive_memory_inside_a_users_module_learns_while_it_resizes() -> None:
    class Adaptive(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.adaptive = AdaptiveMemory("dnc", {"width": 6}, min_slots=2, max_slots=16)
            self.layer = MemoryLayer(8, self.adaptive, batch_first=True)
            self.out = nn.Linear(8 + self.layer.output_size, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([x, self.layer(x)], dim=-1))

    torch.manual_seed(0)
    model = Adaptive()
    assert went_down(train_losses(model, list(model.parameters())))
    assert model.adaptive.slots > 2
