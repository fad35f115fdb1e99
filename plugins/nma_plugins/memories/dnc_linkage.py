"""Temporal memory linkage of the Differentiable Neural Computer.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic external
memory", Nature 538, 471-476, Methods, section "Temporal memory linkage". With
``w^w_t`` the write weighting of this step:

    p_0 = 0,  p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t                 precedence
    L_0 = 0,  L_t[i, j] = (1 - w^w_t[i] - w^w_t[j]) L_{t-1}[i, j]
                          + w^w_t[i] p_{t-1}[j],   L_t[i, i] = 0           temporal link
    f^i_t = L_t w^{r,i}_{t-1},   b^i_t = L_t^T w^{r,i}_{t-1}            forward, backward

``L_t[i, j]`` is the degree to which slot ``i`` was written right after slot ``j``:
the forward weighting moves a read head to the slots written after the ones it read,
the backward weighting to the slots written before them.

Shapes use ``B`` for the batch, ``R`` for read heads and ``N`` for memory slots.
"""

from __future__ import annotations

import torch
from torch import Tensor


def update_precedence(precedence: Tensor, write_weights: Tensor) -> Tensor:
    """Precedence ``p_t = (1 - sum_i w^w_t[i]) p_{t-1} + w^w_t``.

    Args:
        precedence: ``(B, N)`` the previous precedence ``p_{t-1}``.
        write_weights: ``(B, N)`` this step's write weighting ``w^w_t``.

    Returns:
        ``(B, N)`` the new precedence ``p_t``, non-negative, summing to at most 1.
    """
    return (1 - write_weights.sum(dim=-1, keepdim=True)) * precedence + write_weights


def update_link(link: Tensor, write_weights: Tensor, precedence: Tensor) -> Tensor:
    """Temporal link ``L_t[i, j] = (1 - w[i] - w[j]) L_{t-1}[i, j] + w[i] p_{t-1}[j]``.

    The diagonal is set to zero: a slot is never linked to itself.

    Args:
        link: ``(B, N, N)`` the previous link matrix ``L_{t-1}``.
        write_weights: ``(B, N)`` this step's write weighting ``w^w_t``.
        precedence: ``(B, N)`` the previous precedence ``p_{t-1}``.

    Returns:
        ``(B, N, N)`` the new link matrix ``L_t``, entries in ``[0, 1]``, zero diagonal.
    """
    w_i = write_weights.unsqueeze(-1)  # (B, N, 1)
    w_j = write_weights.unsqueeze(-2)  # (B, 1, N)
    updated = (1 - w_i - w_j) * link + w_i * precedence.unsqueeze(-2)
    off_diagonal = 1 - torch.eye(link.shape[-1], dtype=link.dtype, device=link.device)
    return updated * off_diagonal


def directional_weightings(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Forward ``f^i = L_t w^{r,i}_{t-1}`` and backward ``b^i = L_t^T w^{r,i}_{t-1}``.

    Args:
        link: ``(B, N, N)`` this step's link matrix ``L_t``.
        read_weights: ``(B, R, N)`` the previous read weightings ``w^{r,i}_{t-1}``.

    Returns:
        ``(forward, backward)``, each ``(B, R, N)``.
    """
    # f[r, i] = sum_j L[i, j] w[r, j]  ->  w L^T;   b[r, j] = sum_i L[i, j] w[r, i]  ->  w L.
    forward = torch.matmul(read_weights, link.transpose(-1, -2))
    backward = torch.matmul(read_weights, link)
    return forward, backward
