"""Sparse vectors as fixed-size lists of (slot index, value) pairs, for the sparse DNC.

A sparse weighting over ``N`` slots is a pair of tensors of one fixed shape: slot
indices (``int64``) and values, ``(..., K)``. Its dense form is
``dense[..., i] = sum of the values whose index is i`` (:func:`densify`), so a
duplicated index adds up and an entry of value 0 is no entry at all. The shapes never
depend on the data, so a step has no host synchronisation and can be captured in a
CUDA graph.

:func:`coalesce` is the one sparse primitive: it sums the values of equal indices
among ``C`` candidates and keeps the ``k`` largest sums. It compares every candidate
with every other (``O(C^2)`` per row, with ``C`` a small multiple of ``K``), so it
never touches all ``N`` slots.

Shapes use ``B`` for the batch, ``N`` for memory slots, ``C`` for candidates and
``E`` for the entries of a stored row.
"""

from __future__ import annotations

import torch
from torch import Tensor


def coalesce(indices: Tensor, values: Tensor, k: int, slots: int) -> tuple[Tensor, Tensor]:
    """Merge duplicate indices (summing their values) and keep the ``k`` largest sums.

    The result always has ``k`` *distinct* indices per row, so it can be used as a
    scatter target: when the candidates have fewer than ``k`` distinct indices, the
    rest is filled with unused slots of value 0 (taken from the first ``k + C``
    slots, which always hold at least ``k`` slots outside the candidates). Ties are
    broken by ``torch.topk``. Gradients flow to the values of the kept sums.

    Args:
        indices: ``(..., C)`` slot indices in ``[0, slots)``.
        values: ``(..., C)`` their values, non-negative (the ranking assumes it).
        k: how many entries to keep, ``1 <= k <= slots``.
        slots: ``N``, the number of slots.

    Returns:
        ``(indices, values)``, each ``(..., k)``: distinct indices along the last axis
        and the summed values, the largest first.
    """
    candidates = indices.shape[-1]
    fill = min(slots, k + candidates)
    batch_shape = indices.shape[:-1]
    filler = torch.arange(fill, device=indices.device).expand(*batch_shape, fill)
    all_indices = torch.cat([indices, filler], dim=-1)  # (..., C + F)
    all_values = torch.cat([values, values.new_zeros(*batch_shape, fill)], dim=-1)
    same = all_indices.unsqueeze(-1) == all_indices.unsqueeze(-2)  # (..., C + F, C + F)
    sums = torch.matmul(same.to(values.dtype), all_values.unsqueeze(-1)).squeeze(-1)
    size = all_indices.shape[-1]
    earlier = torch.ones(size, size, dtype=torch.bool, device=indices.device).tril(-1)
    first = ~(same & earlier).any(dim=-1)  # the first occurrence of each index
    score = torch.where(first, sums.detach(), torch.full_like(sums, -torch.inf))
    chosen = score.topk(k, dim=-1).indices  # (..., k)
    return all_indices.gather(-1, chosen), sums.gather(-1, chosen)


def densify(indices: Tensor, values: Tensor, slots: int) -> Tensor:
    """The dense form of a sparse vector: ``dense[..., i] = sum_{c: indices[c] = i} values[c]``.

    Args:
        indices: ``(..., C)`` slot indices.
        values: ``(..., C)`` values.
        slots: ``N``.

    Returns:
        ``(..., N)`` the dense vector.
    """
    dense = values.new_zeros(*values.shape[:-1], slots)
    return dense.scatter_add(-1, indices, values)


def gather_rows(table: Tensor, indices: Tensor) -> Tensor:
    """Rows of a per-slot table: ``out[b, ..., :] = table[b, indices[b, ...], :]``.

    Args:
        table: ``(B, N, E)`` one row of ``E`` entries per slot.
        indices: ``(B, ...)`` slot indices.

    Returns:
        ``(B, ..., E)`` the selected rows.
    """
    batch, entries = table.shape[0], table.shape[-1]
    flat = indices.reshape(batch, -1, 1).expand(-1, -1, entries)
    return table.gather(1, flat).reshape(*indices.shape, entries)


def scatter_rows(table: Tensor, indices: Tensor, rows: Tensor) -> Tensor:
    """Replace rows of a per-slot table (out of place): ``table[b, indices[b, r]] = rows[b, r]``.

    Args:
        table: ``(B, N, E)``.
        indices: ``(B, S)`` distinct slot indices per batch element.
        rows: ``(B, S, E)`` the new rows.

    Returns:
        ``(B, N, E)`` the updated table.
    """
    # under autocast the new rows may be bfloat16 while the table stays float32
    return table.scatter(1, indices.unsqueeze(-1).expand_as(rows), rows.to(table.dtype))
