"""Garbage collection and compaction through the Memory contract."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from nma import Memory, Options, collect_garbage
from nma.garbage import compaction_order


class ToyState(NamedTuple):
    memory: Tensor  # (B, N, W)
    usage: Tensor  # (B, N)


class ToyMemory(Memory):
    """Reads the usage-weighted mean of its rows; enough to exercise the contract."""

    Config = Options

    def __init__(self) -> None:
        super().__init__(Options())
        self.interface_size = 1
        self.read_size = 2

    def forward(self, interface: Tensor, state: ToyState) -> tuple[Tensor, ToyState]:
        return torch.einsum("bn,bnw->bw", state.usage, state.memory), state

    def slot_usage(self, state: ToyState) -> Tensor:
        return state.usage

    def reorder_slots(self, state: ToyState, order: Tensor) -> ToyState:
        rows = order.unsqueeze(-1).expand_as(state.memory)
        return ToyState(state.memory.gather(1, rows), state.usage.gather(1, order))

    def clear_slots(self, state: ToyState, mask: Tensor) -> ToyState:
        keep = (~mask).to(state.memory.dtype)
        return ToyState(state.memory * keep.unsqueeze(-1), state.usage * keep)


def test_compaction_order_is_stable_with_live_slots_first():
    dead = torch.tensor([[True, False, True, False, False], [False, False, False, False, True]])
    assert compaction_order(dead).tolist() == [[1, 3, 4, 0, 2], [0, 1, 2, 3, 4]]


def test_collect_garbage_frees_compacts_and_keeps_reads():
    memory = ToyMemory()
    contents = torch.arange(2 * 5 * 2, dtype=torch.float64).reshape(2, 5, 2)
    usage = torch.tensor(
        [[0.0, 0.5, 1e-9, 0.9, 0.2], [0.3, 0.0, 0.0, 0.7, 0.1]], dtype=torch.float64
    )
    state = ToyState(contents, usage)
    before, _ = memory(torch.zeros(2, 1), state)
    new_state, live = collect_garbage(memory, state, threshold=1e-6)
    after, _ = memory(torch.zeros(2, 1), new_state)
    assert live.tolist() == [3, 3]
    assert new_state.usage.tolist() == [[0.5, 0.9, 0.2, 0.0, 0.0], [0.3, 0.7, 0.1, 0.0, 0.0]]
    assert torch.equal(new_state.memory[0, :3], contents[0, [1, 3, 4]])
    assert torch.all(new_state.memory[:, 3:] == 0)
    assert torch.allclose(before, after, atol=1e-7)  # freed slots carried ~no usage
