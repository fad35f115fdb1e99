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


def test_dnc_garbage_collection_keeps_what_it_reads():
    """Writes go to scattered slots; collection moves them to the front and frees the rest,
    and the next step reads exactly what it would have read without the collection."""
    from nma.build import build_memory

    torch.manual_seed(0)
    memory = build_memory("dnc", {"slots": 12, "width": 4, "read_heads": 2}).double()
    B, R, W, P = 2, 2, 4, 5  # P: content addressing's key (W) + strength (1)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    scatter = torch.stack([torch.randperm(12) for _ in range(B)])
    state = memory.reorder_slots(state, scatter)
    gates = R * P + P + 2 * W  # offset of the free gates
    for write in [30.0] * 4:
        interface = torch.randn(B, memory.interface_size, dtype=torch.float64)
        interface[:, gates : gates + R] = -30.0  # free gates 0: keep what was written
        interface[:, gates + R] = 30.0  # allocation gate 1: write to the freest slot
        interface[:, gates + R + 1] = write  # write gate
        _, state = memory(interface, state)
    usage = memory.slot_usage(state)
    assert ((usage > 0.99).sum(-1) == 4).all() and ((usage < 1e-9).sum(-1) == 8).all()

    collected, live = collect_garbage(memory, state, threshold=0.5)
    assert live.tolist() == [4, 4]
    assert (memory.slot_usage(collected)[:, :4] > 0.99).all()
    probe = torch.randn(B, memory.interface_size, dtype=torch.float64)
    before, _ = memory(probe, state)
    after, _ = memory(probe, collected)
    assert torch.allclose(before, after, atol=1e-9)
