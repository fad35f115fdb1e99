"""``MemoryLayer`` with every registered memory, batch-first and time-major, in a user's module."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma.errors import NmaError
from nma.layers import MemoryLayer
from nma.memories import DynamicMemory
from tests.api.training import train_losses, went_down
from tests.api_helpers import memory_names, small_options


@pytest.mark.parametrize("memory", memory_names())
def test_every_memory_works_in_a_memory_layer(memory: str) -> None:
    torch.manual_seed(0)
    layer = MemoryLayer(3, memory, small_options(memory))
    inputs = torch.randn(5, 2, 3)
    reads, state = layer(inputs, return_state=True)
    assert reads.shape == (5, 2, layer.memory.read_size) and torch.isfinite(reads).all()
    reads.square().sum().backward()
    assert layer.interface.weight.grad is not None
    with torch.no_grad():
        time_major = layer(inputs)
        layer.batch_first = True
        batch_first = layer(inputs.transpose(0, 1))
        layer.batch_first = False
        assert torch.allclose(batch_first.transpose(0, 1), time_major, atol=1e-6)
        first, half = layer(inputs[:2], return_state=True)
        assert torch.allclose(torch.cat([first, layer(inputs[2:], half)]), time_major, atol=1e-6)


def test_memory_layer_inside_a_users_module_learns() -> None:
    class Tagger(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.memory = MemoryLayer(8, "dnc", {"slots": 16, "width": 8}, batch_first=True)
            self.out = nn.Linear(8 + self.memory.output_size, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([x, self.memory(x)], dim=-1))

    torch.manual_seed(0)
    model = Tagger()
    assert went_down(train_losses(model, list(model.parameters())))


def test_memory_layer_takes_a_built_memory_and_reports_bad_names() -> None:
    layer = MemoryLayer(4, DynamicMemory(16, 6))
    assert layer(torch.randn(3, 2, 4)).shape == (3, 2, 2 * 6)
    with pytest.raises(NmaError, match="Did you mean 'dnc'"):
        MemoryLayer(4, "dnx")
    with pytest.raises(TypeError, match="with a memory's name"):
        MemoryLayer(4, DynamicMemory(16, 6), {"slots": 3})
