"""SAM's differentiable rows: back-propagation through the sparse modifications only.

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016, arXiv:1610.09027, section 3.4 (efficient back-propagation through
time): the memory itself is kept out of the autograd graph and only the rows a step
modifies are recorded, so a step costs time and space in the rows it touches, not in
the ``N`` slots.

The memory is held twice:

* ``memory`` ``(B, N, W)``, a plain buffer outside autograd, always up to date: every
  write is copied into it in place (detached). Searches read it.
* ``rows`` ``(B, L, W)``, the differentiable values of the rows written since the
  state was last detached, appended step after step (a log: a slot written twice
  has two rows, the newest one counts). ``row_of_slot`` ``(B, N)`` maps a slot to its
  newest row (``-1``: not written since the last detach) and ``slot_of_row``
  ``(B, L)`` maps every row back to its slot.

A differentiable read of a slot takes its newest row where it has one, and the
buffer (a constant) otherwise; both hold the same value, so only the gradient path
differs. When the rows no longer require gradients (the state was detached for
truncated back-propagation, or the step runs under ``torch.no_grad()``) they are
dropped: the buffer already holds their values. ``L`` therefore grows by the number
of rows written per step until the next detach, and a step costs ``O(L W)`` for the
log, independent of ``N``.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``L`` for
the rows in the log and ``E`` for the slots read or written at once.
"""

from __future__ import annotations

import torch
from torch import Tensor


def gather_rows(memory: Tensor, rows: Tensor, row_of_slot: Tensor, slots: Tensor) -> Tensor:
    """The current value of some slots, differentiable where they were written.

    Args:
        memory: ``(B, N, W)`` the buffer (a constant for autograd).
        rows: ``(B, L, W)`` the differentiable rows written since the last detach.
        row_of_slot: ``(B, N)`` int64, the newest row of every slot or ``-1``.
        slots: ``(B, E)`` int64 slot indices (repeats allowed).

    Returns:
        ``(B, E, W)`` the rows' values; gradients flow into ``rows`` only.
    """
    width = memory.shape[2]
    index = slots.unsqueeze(2).expand(-1, -1, width)
    constant = memory.detach().gather(1, index)  # (B, E, W)
    if rows.shape[1] == 0:
        return constant
    row = row_of_slot.gather(1, slots)  # (B, E)
    logged = rows.gather(1, row.clamp(min=0).unsqueeze(2).expand(-1, -1, width))
    return torch.where((row >= 0).unsqueeze(2), logged, constant)


def append_rows(
    rows: Tensor,
    slot_of_row: Tensor,
    row_of_slot: Tensor,
    memory: Tensor,
    slots: Tensor,
    values: Tensor,
) -> tuple[Tensor, Tensor]:
    """Write ``values`` to ``slots``: log them, point the slots at them, copy to the buffer.

    Repeated slots must carry identical values (as SAM's write computes them): the
    slot then points at one of the copies, which alone receives gradients.

    Args:
        rows: ``(B, L, W)`` the log of differentiable rows.
        slot_of_row: ``(B, L)`` int64, the slot of every logged row.
        row_of_slot: ``(B, N)`` int64, updated in place to point at the new rows.
        memory: ``(B, N, W)`` the buffer, updated in place with the detached values.
        slots: ``(B, E)`` int64 the slots written.
        values: ``(B, E, W)`` their new values.

    Returns:
        ``(rows, slot_of_row)``: ``(B, L + E, W)`` and ``(B, L + E)``.
    """
    length, count = rows.shape[1], slots.shape[1]
    new_rows = torch.cat([rows, values], dim=1)
    new_slot_of_row = torch.cat([slot_of_row, slots], dim=1)
    positions = torch.arange(length, length + count, device=slots.device).expand_as(slots)
    with torch.no_grad():
        row_of_slot.scatter_(1, slots, positions)
        memory.scatter_(1, slots.unsqueeze(2).expand(-1, -1, memory.shape[2]), values.detach())
    return new_rows, new_slot_of_row


def drop_rows(rows: Tensor, slot_of_row: Tensor, row_of_slot: Tensor) -> tuple[Tensor, Tensor]:
    """Forget the log (its values are already in the buffer); reset ``row_of_slot`` in place.

    Args:
        rows: ``(B, L, W)`` the log of rows.
        slot_of_row: ``(B, L)`` int64, the slot of every logged row.
        row_of_slot: ``(B, N)`` int64, set back to ``-1`` on those slots, in place.

    Returns:
        ``(rows, slot_of_row)``, empty: ``(B, 0, W)`` and ``(B, 0)``.
    """
    with torch.no_grad():
        row_of_slot.scatter_(1, slot_of_row, -1)
    return rows.detach()[:, :0], slot_of_row[:, :0]
