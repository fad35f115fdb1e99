"""``GatedMemory``: a shut write gate keeps the memory, an open one is the memory's step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma.build import build_memory
from nma.layers import GatedMemory, MemoryLayer
from nma.state import map_state
from tests.api.training import train_losses, went_down


def _flat(state: object) -> list[torch.Tensor]:
    tensors: list[torch.Tensor] = []
    map_state(lambda t: tensors.append(t) or t, state)
    return tensors


@pytest.mark.parametrize("memory", ["dnc", "kv", "ntm"])
def test_gates_shut_and_open(memory: str) -> None:
    torch.manual_seed(0)
    inner = build_memory(memory, {"slots": 5, "width": 3})
    gated = GatedMemory(inner)
    assert gated.interface_size == inner.interface_size + 2
    state = gated.initial_state(2, torch.device("cpu"), torch.float64)
    gated.double()
    for _ in range(2):  # fill the memory a little, gates half open
        _, state = gated(torch.randn(2, gated.interface_size, dtype=torch.float64), state)
    raw = torch.randn(2, inner.interface_size, dtype=torch.float64)
    gates = torch.tensor([[-800.0, 800.0]] * 2, dtype=torch.float64)  # write shut, read open
    reads, kept = gated(torch.cat([gates, raw], dim=-1), state)
    assert torch.allclose(reads, inner(raw, state.memory)[0])
    for before, after in zip(_flat(state.memory), _flat(kept.memory), strict=True):
        if before.is_floating_point():
            assert torch.equal(before, after)
    gates = torch.tensor([[800.0, 0.0]] * 2, dtype=torch.float64)  # write open, read halved
    reads, written = gated(torch.cat([gates, raw], dim=-1), state)
    expected_reads, expected = inner(raw, state.memory)
    assert torch.allclose(reads, 0.5 * expected_reads)
    for got, want in zip(_flat(written.memory), _flat(expected), strict=True):
        assert torch.allclose(got.double(), want.double())
    assert set(gated.inspect(written)) >= {"write_gate", "read_gate", "read_weights"}


def test_gated_memory_refuses_a_memory_updated_in_place() -> None:
    with pytest.raises(ValueError, match="in place"):
        GatedMemory("sam", {"slots": 8, "width": 4})


def test_gated_memory_inside_a_users_module_learns() -> None:
    class Gated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            memory = GatedMemory("ntm", {"slots": 8, "width": 6})
            self.layer = MemoryLayer(8, memory, batch_first=True)
            self.out = nn.Linear(8 + 6, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.out(torch.cat([x, self.layer(x)], dim=-1))

    torch.manual_seed(0)
    model = Gated()
    assert went_down(train_losses(model, list(model.parameters())))
