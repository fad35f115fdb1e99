"""SAM's usage: last-access time stamps, and the least recently accessed slot in O(sqrt N).

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016, arXiv:1610.09027, section 3.2 (write). A slot counts as accessed
at step ``t`` when its read and write weights together exceed a threshold ``delta``;
the paper's usage ``U^(2)`` is the number of steps since that last non-negligible
access, and the write goes (in part) to the slot with the largest such age:

    U^(2)_t(i) = t - max{ s <= t : w^R_s(i) + w^W_s(i) > delta }
    I^U_t      = one-hot at argmax_i U^(2)_{t-1}(i)         (least recently accessed)

Here the state holds the last-access step ``T(i)`` itself (``-1``: never accessed),
so ``U^(2)_t(i) = t - T(i)`` and the least recently accessed slot is ``argmin_i T(i)``
(the lowest index among ties, so never-used slots are taken in order 0, 1, 2, ...).

Finding that minimum over ``N`` slots at every step would cost ``O(N)``. The slots are
instead cut into ``G = ceil(N / S)`` blocks of ``S = ceil(sqrt N)`` slots, and the
minimum of every block is kept in ``block_min`` ``(B, G)``. A step

* finds the least recently accessed slot with an ``argmin`` over the ``G`` block
  minima and one over the ``S`` stamps of the winning block: ``O(sqrt N)``;
* after stamping the ``E`` slots it touched, recomputes the minima of their blocks
  only: ``O(E sqrt N)``.

Time stamps are ``int64``; the stamps of the ``G S - N`` padding slots at the end are
the largest ``int64``, so they are never chosen.

Shapes use ``B`` for the batch, ``N`` for slots, ``G`` for blocks, ``S`` for the
block size and ``E`` for the entries (slots) touched in one step.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

NEVER = -1
"""The time stamp of a slot that has never been accessed."""

PADDING = torch.iinfo(torch.int64).max
"""The time stamp of the padding slots that fill the last block."""


def block_layout(slots: int) -> tuple[int, int]:
    """``(S, G)``: the block size ``ceil(sqrt N)`` and the number of blocks ``ceil(N / S)``."""
    size = math.isqrt(slots - 1) + 1  # ceil(sqrt N) for N >= 1
    return size, -(-slots // size)


def initial_times(batch: int, slots: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Time stamps and block minima before the first step: nothing accessed yet.

    Args:
        batch: ``B``.
        slots: ``N``.
        device: where the tensors live.

    Returns:
        ``(times, block_min)``: ``(B, G S)`` int64 stamps, ``NEVER`` on the ``N`` slots
        and ``PADDING`` after them; ``(B, G)`` int64 block minima, all ``NEVER``.
    """
    size, blocks = block_layout(slots)
    times = torch.full((batch, blocks * size), NEVER, dtype=torch.int64, device=device)
    times[:, slots:] = PADDING
    block_min = torch.full((batch, blocks), NEVER, dtype=torch.int64, device=device)
    return times, block_min


def least_recent(times: Tensor, block_min: Tensor) -> Tensor:
    """The least recently accessed slot of every batch element, ``argmin_i T(i)``.

    Ties go to the lowest slot index, as a dense ``argmin`` over all slots would.

    Args:
        times: ``(B, G S)`` last-access stamps (see :func:`initial_times`).
        block_min: ``(B, G)`` the minimum stamp of every block.

    Returns:
        ``(B,)`` int64 slot indices.
    """
    batch, blocks = block_min.shape
    size = times.shape[1] // blocks
    block = block_min.argmin(dim=1)  # (B,): the first block holding the minimum
    start = (block * size).unsqueeze(1)  # (B, 1)
    offsets = torch.arange(size, device=times.device).unsqueeze(0)  # (1, S)
    stamps = times.gather(1, start + offsets)  # (B, S)
    return block * size + stamps.argmin(dim=1)


def record_access(
    times: Tensor,
    block_min: Tensor,
    slots: Tensor,
    weights: Tensor,
    step: Tensor,
    threshold: float,
) -> None:
    """Stamp the slots accessed at ``step`` and refresh their blocks' minima, in place.

    A slot may appear several times in ``slots`` (read by two heads, read and written);
    its weights are summed before the comparison with the threshold, as the paper's
    ``w^R_t(i) + w^W_t(i) > delta`` sums the dense weightings.

    Args:
        times: ``(B, G S)`` int64 last-access stamps, updated in place.
        block_min: ``(B, G)`` int64 block minima, updated in place.
        slots: ``(B, E)`` int64 slots touched this step (reads and writes).
        weights: ``(B, E)`` their read or write weights (not differentiated).
        step: ``(B,)`` int64 the current step ``t``.
        threshold: ``delta``: a slot is accessed when its summed weight exceeds it.
    """
    batch, blocks = block_min.shape
    size = times.shape[1] // blocks
    same = (slots.unsqueeze(2) == slots.unsqueeze(1)).to(weights.dtype)  # (B, E, E)
    total = torch.matmul(same, weights.unsqueeze(2)).squeeze(2)  # (B, E)
    old = times.gather(1, slots)
    new = torch.where(total > threshold, step.unsqueeze(1).expand_as(old), old)
    times.scatter_(1, slots, new)  # duplicates carry identical values
    block = torch.div(slots, size, rounding_mode="floor")  # (B, E)
    offsets = torch.arange(size, device=times.device).view(1, 1, size)
    stamps = times.gather(1, (block.unsqueeze(2) * size + offsets).reshape(batch, -1))
    block_min.scatter_(1, block, stamps.view(batch, -1, size).amin(dim=2))
