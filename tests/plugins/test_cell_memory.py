"""The ``cell`` memory against its equations in float64 with plain floats."""

from __future__ import annotations

import math

import torch

from nma_plugins.memories.cell import CellState, MemoryCellMemory


def _softmax(v: list[float]) -> list[float]:
    top = max(v)
    e = [math.exp(a - top) for a in v]
    return [a / sum(e) for a in e]


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def test_cell_step_matches_the_equations() -> None:
    torch.manual_seed(0)
    n, w = 3, 2
    memory = MemoryCellMemory(MemoryCellMemory.Config(slots=n, width=w))
    assert memory.interface_size == 2 * n + w + 2 and memory.read_size == w
    state = memory.initial_state(2, torch.device("cpu"), torch.float64)
    m = [[[0.0] * w for _ in range(n)] for _ in range(2)]
    for _ in range(4):
        interface = torch.randn(2, memory.interface_size, dtype=torch.float64) * 2
        reads, state = memory(interface, state)
        assert isinstance(state, CellState)
        for b in range(2):
            i = interface[b].tolist()
            ww = [_sigmoid(i[n + w]) * p for p in _softmax(i[:n])]
            v = [math.tanh(a) for a in i[n : n + w]]
            m[b] = [[m[b][s][k] * (1 - ww[s]) + ww[s] * v[k] for k in range(w)] for s in range(n)]
            wr = [_sigmoid(i[-1]) * p for p in _softmax(i[n + w + 1 : 2 * n + w + 1])]
            r = [sum(wr[s] * m[b][s][k] for s in range(n)) for k in range(w)]
            assert torch.allclose(reads[b], torch.tensor(r, dtype=torch.float64), atol=1e-12)
            assert torch.allclose(state.write_weights[b, 0], torch.tensor(ww, dtype=torch.float64))
        assert torch.allclose(state.memory, torch.tensor(m, dtype=torch.float64), atol=1e-12)


def test_closed_write_gate_keeps_the_cell() -> None:
    memory = MemoryCellMemory(MemoryCellMemory.Config(slots=1, width=3))
    state = memory.initial_state(1, torch.device("cpu"), torch.float32)
    store = torch.tensor([[0.0, 1.0, -1.0, 0.5, 50.0, 0.0, 50.0]])  # write gate open
    reads, state = memory(store, state)
    assert torch.allclose(reads, torch.tanh(store[:, 1:4]), atol=1e-6)
    keep = torch.tensor([[0.0, -3.0, 3.0, 0.0, -50.0, 0.0, 50.0]])  # write gate shut
    reads, state = memory(keep, state)
    assert torch.allclose(reads, torch.tanh(store[:, 1:4]), atol=1e-6)
    assert set(memory.inspect(state)) == {"read_weights", "write_weights", "memory"}
