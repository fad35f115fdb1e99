"""Sparse temporal memory linkage of the sparse DNC: sparse precedence and link rows.

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016, the SDNC section of the supplementary material: the DNC's
``N x N`` temporal link matrix is approximated by a sparse matrix with at most
``K_L`` non-zero entries per row, stored twice, once by rows (``L``) and once by
columns (``L^T``), and the precedence weighting is kept sparse (its ``K_L`` largest
entries). With ``w`` the (``K``-sparse) write weighting of this step, the updates
are the DNC's (Graves et al. 2016, Methods, "Temporal memory linkage"):

    p_t = (1 - sum_i w[i]) p_{t-1} + w                          then its K_L largest
    L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j],  L_t[i, i] = 0
    f = L_t w^r_{t-1},   b = L_t^T w^r_{t-1}                   forward, backward

A row ``i`` of ``L`` gains new entries only if ``w[i] > 0`` (at most ``K`` rows), and
a row ``j`` of ``L^T`` only if ``p_{t-1}[j] > 0`` (at most ``K_L`` rows): only these
rows are merged and truncated back to their ``K_L`` largest entries (``O(K K_L^2)``
work). Every other stored entry is only rescaled by ``1 - w[i] - w[j]``; that
elementwise pass costs ``O(N K_L)``, the same order as the out-of-place copy of the
link tables that autograd needs anyway. Because ``L`` and ``L^T`` are truncated
independently, they are exact transposes of each other only while no row exceeds
``K_L`` non-zero entries; each is then exactly the DNC's dense link matrix.

The forward weighting ``f[i] = sum_j L[i, j] w[j]`` gathers the ``L^T`` rows of the
read slots ``j``, the backward weighting ``b[j] = sum_i L[i, j] w[i]`` gathers the
``L`` rows of the read slots ``i``: ``O(K K_L)`` each, hence both tables.

Shapes use ``B`` for the batch, ``N`` for slots, ``R`` for read heads, ``K`` for the
entries of a sparse weighting and ``E = K_L`` for the entries of a link row or of the
precedence.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from nma_plugins.memories.sdnc_sparse import coalesce, densify, gather_rows, scatter_rows


class SparseLinks(NamedTuple):
    """The sparse link matrix, by rows and by columns.

    ``L[i, link_indices[b, i, e]] += link_values[b, i, e]`` and
    ``L^T[j, link_t_indices[b, j, e]] += link_t_values[b, j, e]``.

    Attributes:
        link_indices: ``(B, N, E)`` column indices of the rows of ``L``.
        link_values: ``(B, N, E)`` their values.
        link_t_indices: ``(B, N, E)`` column indices of the rows of ``L^T``.
        link_t_values: ``(B, N, E)`` their values.
    """

    link_indices: Tensor
    link_values: Tensor
    link_t_indices: Tensor
    link_t_values: Tensor


def sparse_update_precedence(
    prec_indices: Tensor,
    prec_values: Tensor,
    write_indices: Tensor,
    write_values: Tensor,
    slots: int,
) -> tuple[Tensor, Tensor]:
    """``p_t = (1 - sum_i w[i]) p_{t-1} + w``, truncated to its ``E`` largest entries.

    Args:
        prec_indices: ``(B, E)`` the previous precedence's slots.
        prec_values: ``(B, E)`` its values.
        write_indices: ``(B, K)`` the write weighting's slots.
        write_values: ``(B, K)`` its values.
        slots: ``N``.

    Returns:
        ``(indices, values)``, each ``(B, E)``, distinct indices.
    """
    kept = (1 - write_values.sum(dim=-1, keepdim=True)) * prec_values
    indices = torch.cat([prec_indices, write_indices], dim=-1)
    values = torch.cat([kept, write_values], dim=-1)
    return coalesce(indices, values, prec_indices.shape[-1], slots)


def _merge_rows(
    row_ids: Tensor,
    old_indices: Tensor,
    old_values: Tensor,
    new_indices: Tensor,
    new_values: Tensor,
    slots: int,
) -> tuple[Tensor, Tensor]:
    """Add new entries to some rows, zero their diagonal, keep each row's ``E`` largest.

    Args:
        row_ids: ``(B, S)`` the slots of the rows.
        old_indices: ``(B, S, E)`` and ``old_values``: the rows' current entries.
        new_indices: ``(B, S, C)`` and ``new_values``: the entries to add.
        slots: ``N``.

    Returns:
        ``(indices, values)``, each ``(B, S, E)``.
    """
    indices = torch.cat([old_indices, new_indices], dim=-1)
    values = torch.cat([old_values, new_values], dim=-1)
    values = values * (indices != row_ids.unsqueeze(-1)).to(values.dtype)  # L[i, i] = 0
    return coalesce(indices, values, old_indices.shape[-1], slots)


def sparse_update_link(
    links: SparseLinks,
    write_indices: Tensor,
    write_values: Tensor,
    prec_indices: Tensor,
    prec_values: Tensor,
) -> SparseLinks:
    """``L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j]``, zero diagonal.

    Both ``L`` and ``L^T`` are updated; the rows that gain entries keep their ``E``
    largest.

    Args:
        links: the previous :class:`SparseLinks`.
        write_indices: ``(B, K)`` distinct slots of this step's write weighting ``w``.
        write_values: ``(B, K)`` its values.
        prec_indices: ``(B, E)`` distinct slots of the previous precedence ``p_{t-1}``.
        prec_values: ``(B, E)`` its values.

    Returns:
        The new :class:`SparseLinks`.
    """
    batch, slots, entries = links.link_indices.shape
    write_dense = densify(write_indices, write_values, slots)  # (B, N)
    w_rows = write_dense.unsqueeze(-1)  # (B, N, 1): w[i] of every stored row

    def w_at(indices: Tensor) -> Tensor:  # w[j] at stored column indices (B, N, E)
        return write_dense.gather(1, indices.reshape(batch, -1)).reshape(indices.shape)

    # Every stored entry decays by (1 - w[row] - w[column]).
    link_values = (1 - w_rows - w_at(links.link_indices)) * links.link_values
    link_t_values = (1 - w_rows - w_at(links.link_t_indices)) * links.link_t_values

    # Rows i of L with w[i] > 0 gain w[i] p[j] at the precedence's slots j.
    k = write_indices.shape[-1]
    new_indices = prec_indices.unsqueeze(1).expand(batch, k, entries)
    new_values = write_values.unsqueeze(-1) * prec_values.unsqueeze(1)  # (B, K, E)
    rows_i, rows_v = _merge_rows(
        write_indices,
        gather_rows(links.link_indices, write_indices),
        gather_rows(link_values, write_indices),
        new_indices,
        new_values,
        slots,
    )
    link_indices = scatter_rows(links.link_indices, write_indices, rows_i)
    link_values = scatter_rows(link_values, write_indices, rows_v)

    # Rows j of L^T with p[j] > 0 gain w[i] p[j] at the write's slots i.
    new_t_indices = write_indices.unsqueeze(1).expand(batch, entries, k)
    new_t_values = prec_values.unsqueeze(-1) * write_values.unsqueeze(1)  # (B, E, K)
    rows_ti, rows_tv = _merge_rows(
        prec_indices,
        gather_rows(links.link_t_indices, prec_indices),
        gather_rows(link_t_values, prec_indices),
        new_t_indices,
        new_t_values,
        slots,
    )
    link_t_indices = scatter_rows(links.link_t_indices, prec_indices, rows_ti)
    link_t_values = scatter_rows(link_t_values, prec_indices, rows_tv)
    return SparseLinks(link_indices, link_values, link_t_indices, link_t_values)


def sparse_directional_weightings(
    links: SparseLinks, read_indices: Tensor, read_values: Tensor
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Forward ``f = L w^r_{t-1}`` and backward ``b = L^T w^r_{t-1}``, as sparse candidates.

    Neither is truncated: each has ``K E`` entries, possibly with repeated indices
    (which add up; see :func:`nma_plugins.memories.sdnc_sparse.densify`).

    Args:
        links: this step's :class:`SparseLinks`.
        read_indices: ``(B, R, K)`` slots of the previous read weightings.
        read_values: ``(B, R, K)`` their values.

    Returns:
        ``((forward_indices, forward_values), (backward_indices, backward_values))``,
        each ``(B, R, K E)``.
    """
    batch, heads, k = read_indices.shape
    weights = read_values.unsqueeze(-1)  # (B, R, K, 1)
    # f[i] = sum_j w[j] L^T[j, i]: the L^T rows of the read slots.
    forward_indices = gather_rows(links.link_t_indices, read_indices)  # (B, R, K, E)
    forward_values = weights * gather_rows(links.link_t_values, read_indices)
    # b[j] = sum_i w[i] L[i, j]: the L rows of the read slots.
    backward_indices = gather_rows(links.link_indices, read_indices)
    backward_values = weights * gather_rows(links.link_values, read_indices)
    shape = (batch, heads, -1)
    return (
        (forward_indices.reshape(shape), forward_values.reshape(shape)),
        (backward_indices.reshape(shape), backward_values.reshape(shape)),
    )
