"""SAM's differentiable log of written rows over a constant buffer."""

from __future__ import annotations

import numpy as np
import torch

from nma_plugins.memories.sam_rows import append_rows, drop_rows, gather_rows

B, N, W = 2, 6, 3
F64 = torch.float64


def setup(seed: int = 0):
    rng = np.random.default_rng(seed)
    memory = torch.tensor(rng.normal(size=(B, N, W)))
    rows = torch.zeros(B, 0, W, dtype=F64)
    slot_of_row = torch.zeros(B, 0, dtype=torch.int64)
    row_of_slot = torch.full((B, N), -1, dtype=torch.int64)
    return rng, memory, rows, slot_of_row, row_of_slot


def test_gather_without_log_reads_the_buffer() -> None:
    _, memory, rows, _, row_of_slot = setup()
    slots = torch.tensor([[0, 5, 5], [3, 1, 0]])
    got = gather_rows(memory, rows, row_of_slot, slots)
    for b in range(B):
        for e in range(3):
            assert torch.equal(got[b, e], memory[b, slots[b, e]])
    assert not got.requires_grad


def test_append_then_gather() -> None:
    rng, memory, rows, slot_of_row, row_of_slot = setup(1)
    before = memory.clone()
    values = torch.tensor(rng.normal(size=(B, 2, W)), requires_grad=True)
    slots = torch.tensor([[1, 4], [2, 2]])
    # A repeated slot (batch 1, slot 2) must carry identical values.
    with torch.no_grad():
        values[1, 1] = values[1, 0]
    rows, slot_of_row = append_rows(rows, slot_of_row, row_of_slot, memory, slots, values)
    assert rows.shape == (B, 2, W) and slot_of_row.tolist() == slots.tolist()
    assert row_of_slot[0].tolist() == [-1, 0, -1, -1, 1, -1]
    assert row_of_slot[1, 2].item() in (0, 1)
    # The buffer holds the new values (detached); other rows are untouched.
    torch.testing.assert_close(memory[0, 1], values[0, 0].detach(), rtol=0, atol=0)
    torch.testing.assert_close(memory[1, 2], values[1, 0].detach(), rtol=0, atol=0)
    untouched = [i for i in range(N) if i not in (1, 4)]
    assert torch.equal(memory[0, untouched], before[0, untouched])
    assert not memory.requires_grad

    # A second write of slot 4: the newest row counts.
    newer = torch.tensor(rng.normal(size=(B, 1, W)), requires_grad=True)
    rows, slot_of_row = append_rows(
        rows, slot_of_row, row_of_slot, memory, torch.tensor([[4], [5]]), newer
    )
    assert row_of_slot[0, 4].item() == 2 and slot_of_row[0].tolist() == [1, 4, 4]
    got = gather_rows(memory, rows, row_of_slot, torch.tensor([[4, 1, 0], [5, 2, 3]]))
    torch.testing.assert_close(got[0, 0], newer[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(got[0, 1], values[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(got[0, 2], memory[0, 0], rtol=0, atol=0)
    torch.testing.assert_close(got[1, 0], newer[1, 0], rtol=0, atol=0)

    # Gradients reach exactly the rows that were read, through the newest copies.
    (got * torch.arange(1.0, 1.0 + 2 * 3 * W, dtype=F64).view(2, 3, W)).sum().backward()
    assert torch.equal(newer.grad[0, 0], torch.arange(1.0, 1.0 + W, dtype=F64))
    assert torch.equal(values.grad[0, 0], torch.arange(1.0 + W, 1.0 + 2 * W, dtype=F64))
    assert float(values.grad[0, 1].abs().sum()) == 0.0  # slot 4's old row: superseded
    assert float(values.grad[1].abs().sum()) > 0  # slot 2 of batch 1 was read


def test_drop_rows() -> None:
    rng, memory, rows, slot_of_row, row_of_slot = setup(2)
    values = torch.tensor(rng.normal(size=(B, 3, W)), requires_grad=True)
    slots = torch.tensor([[0, 3, 5], [1, 1, 4]])
    with torch.no_grad():
        values[1, 1] = values[1, 0]
    rows, slot_of_row = append_rows(rows, slot_of_row, row_of_slot, memory, slots, values)
    rows, slot_of_row = drop_rows(rows, slot_of_row, row_of_slot)
    assert rows.shape == (B, 0, W) and slot_of_row.shape == (B, 0)
    assert not rows.requires_grad
    assert bool((row_of_slot == -1).all())
    # The values survive in the buffer.
    got = gather_rows(memory, rows, row_of_slot, slots)
    torch.testing.assert_close(got, values.detach(), rtol=0, atol=0)


def test_gradcheck() -> None:
    rng, memory, rows, slot_of_row, row_of_slot = setup(3)
    values = torch.tensor(rng.normal(size=(B, 2, W)), requires_grad=True)
    slots = torch.tensor([[2, 3], [0, 5]])
    reads = torch.tensor([[3, 1, 2, 3], [5, 5, 4, 0]])

    def fn(values: torch.Tensor) -> torch.Tensor:
        buffer, owners = memory.clone(), row_of_slot.clone()
        log, _ = append_rows(rows, slot_of_row, owners, buffer, slots, values * 2)
        return gather_rows(buffer, log, owners, reads)

    assert torch.autograd.gradcheck(fn, (values,))
