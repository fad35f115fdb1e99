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

    The diagonal is set to zero: a slot is never linked to itself. The update is one
    :class:`LinkUpdate` with a hand-written backward pass, which keeps only ``L_{t-1}``
    (the previous state, stored anyway), ``w`` and ``p`` for the backward pass instead
    of the several ``N x N`` intermediates autograd would record.

    Args:
        link: ``(B, N, N)`` the previous link matrix ``L_{t-1}``.
        write_weights: ``(B, N)`` this step's write weighting ``w^w_t``.
        precedence: ``(B, N)`` the previous precedence ``p_{t-1}``.

    Returns:
        ``(B, N, N)`` the new link matrix ``L_t``, entries in ``[0, 1]``, zero diagonal.
    """
    return LinkUpdate.apply(link, write_weights, precedence)


class LinkUpdate(torch.autograd.Function):
    """The link update of :func:`update_link` with its gradient written by hand.

    With ``G`` the gradient of ``L_t`` with its diagonal zeroed (the diagonal of
    ``L_t`` is constant) and ``D = 1 - w 1^T - 1 w^T``:

        dL_{t-1} = G o D
        dw[k]    = sum_j G[k, j] (p[j] - L_{t-1}[k, j]) - sum_i G[i, k] L_{t-1}[i, k]
        dp[j]    = sum_i G[i, j] w[i]
    """

    @staticmethod
    def forward(
        ctx: torch.autograd.function.FunctionCtx, link: Tensor, w: Tensor, p: Tensor
    ) -> Tensor:
        w_i = w.unsqueeze(-1)  # (B, N, 1)
        # Built in place in one N x N buffer: (1 - w_j) L, then - w_i L, then + w_i p_j.
        out = link * (1 - w.unsqueeze(-2))
        out.addcmul_(w_i, link, value=-1)
        out.addcmul_(w_i, p.unsqueeze(-2))
        out.diagonal(dim1=-2, dim2=-1).zero_()
        ctx.save_for_backward(link, w, p)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: torch.autograd.function.FunctionCtx, grad: Tensor
    ) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        link, w, p = ctx.saved_tensors
        # G is the incoming gradient with its diagonal zeroed; it is never built: each
        # term below subtracts the diagonal's share instead.
        diagonal = grad.diagonal(dim1=-2, dim2=-1)  # (B, N), a view
        grad_link = grad_w = grad_p = None
        if ctx.needs_input_grad[0]:
            grad_link = grad * (1 - w.unsqueeze(-2))  # G o D built in one N x N buffer
            grad_link.addcmul_(grad, w.unsqueeze(-1), value=-1)
            grad_link.diagonal(dim1=-2, dim2=-1).zero_()
        if ctx.needs_input_grad[1]:
            # L_{t-1} has a zero diagonal, so grad o L_{t-1} = G o L_{t-1}.
            gl = grad * link  # (B, N, N), freed on return
            grad_pw = torch.matmul(grad, p.unsqueeze(-1)).squeeze(-1) - diagonal * p
            grad_w = grad_pw - gl.sum(-1) - gl.sum(-2)
        if ctx.needs_input_grad[2]:
            grad_p = torch.matmul(w.unsqueeze(-2), grad).squeeze(-2) - w * diagonal
        return grad_link, grad_w, grad_p


def directional_weightings(link: Tensor, read_weights: Tensor) -> tuple[Tensor, Tensor]:
    """Forward ``f^i = L_t w^{r,i}_{t-1}`` and backward ``b^i = L_t^T w^{r,i}_{t-1}``.

    Args:
        link: ``(B, N, N)`` this step's link matrix ``L_t``.
        read_weights: ``(B, R, N)`` the previous read weightings ``w^{r,i}_{t-1}``.

    Returns:
        ``(forward, backward)``, each ``(B, R, N)``.
    """
    # f[r, i] = sum_j L[i, j] w[r, j]  ->  (L w^T)^T;   b[r, j] = sum_i L[i, j] w[r, i]  ->  w L.
    # Multiplying L itself, never a transposed view of it, keeps the gradient of L
    # contiguous: no N x N copy in the backward pass.
    forward = torch.matmul(link, read_weights.transpose(-1, -2)).transpose(-1, -2)
    backward = torch.matmul(read_weights, link)
    return forward, backward
