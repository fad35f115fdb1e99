"""Content addressing with a hand-written backward pass, for fused memory steps.

The same weighting as :func:`nma_plugins.addressing.content.content_weights`
(Graves, Wayne & Danihelka 2014, arXiv:1410.5401, section 3.3.1):

    K(k, M(i)) = k . M(i) / (|k| |M(i)| + eps)                          (eq. 6)
    w_c(i)     = softmax_i(beta K(k, M(i)))                             (eq. 5)

computed without autograd so that a memory's fused step (a
``torch.autograd.Function``) can call it in its forward pass and call
:func:`content_backward` in its backward pass. With ``z = beta K``, ``D = |k||M(i)| +
eps`` and ``g`` the gradient arriving at ``w_c``, the chain rule gives:

    dL/dz_i     = w_i (g_i - sum_j w_j g_j)                             (softmax)
    dL/dbeta    = sum_i dL/dz_i K_i
    dL/dK_i     = beta dL/dz_i
    dL/d(k.M_i) = dL/dK_i / D_i
    dL/dD_i     = -dL/dK_i K_i / D_i
    dL/dk       = sum_i dL/d(k.M_i) M(i) + (sum_i dL/dD_i |M(i)|) k / |k|
    dL/dM(i)    = sum_h dL/d(k_h.M_i) k_h + (sum_h dL/dD_hi |k_h|) M(i) / |M(i)|

The norms' gradients at a zero vector are taken as 0, as autograd does.

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for slots and ``W`` for the
slot width.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


class ContentSaved(NamedTuple):
    """What :func:`content_backward` needs from :func:`content_forward`.

    Attributes:
        keys: ``(B, H, W)``.
        memory: ``(B, N, W)``.
        strengths: ``(B, H, 1)`` the key strengths ``beta``.
        weights: ``(B, H, N)`` the content weightings ``w_c``.
        similarity: ``(B, H, N)`` the cosine similarities ``K``.
        denominator: ``(B, H, N)`` ``|k||M(i)| + eps``.
        key_norms: ``(B, H, 1)``.
        row_norms: ``(B, 1, N)``.
    """

    keys: Tensor
    memory: Tensor
    strengths: Tensor
    weights: Tensor
    similarity: Tensor
    denominator: Tensor
    key_norms: Tensor
    row_norms: Tensor


def row_norms_of(memory: Tensor) -> Tensor:
    """``(B, 1, N)`` the Euclidean norms of the rows of ``memory`` ``(B, N, W)``."""
    return torch.linalg.vector_norm(memory, dim=-1).unsqueeze(-2)


def content_forward(
    keys: Tensor,
    strengths: Tensor,
    memory: Tensor,
    eps: float,
    row_norms: Tensor | None = None,
) -> tuple[Tensor, ContentSaved]:
    """Content weightings, NTM eqs. (5)-(6), without recording autograd.

    Args:
        keys: ``(B, H, W)`` one key per head.
        strengths: ``(B, H, 1)`` key strengths ``beta``.
        memory: ``(B, N, W)`` the memory matrix.
        eps: added to the product of the norms.
        row_norms: ``(B, 1, N)`` the rows' norms when the caller has them already.

    Returns:
        ``(weights, saved)``: ``(B, H, N)`` weightings, each row summing to 1, and
        what :func:`content_backward` needs.
    """
    if row_norms is None:
        row_norms = row_norms_of(memory)
    key_norms = torch.linalg.vector_norm(keys, dim=-1, keepdim=True)  # (B, H, 1)
    denominator = (key_norms * row_norms).add_(eps)
    similarity = torch.bmm(keys, memory.transpose(1, 2)).div_(denominator)
    weights = torch.softmax(strengths * similarity, dim=-1)
    saved = ContentSaved(
        keys, memory, strengths, weights, similarity, denominator, key_norms, row_norms
    )
    return weights, saved


def softmax_backward(weights: Tensor, grad: Tensor) -> Tensor:
    """Gradient at the logits of ``weights = softmax(z)`` along the last dimension."""
    return weights * (grad - (grad * weights).sum(-1, keepdim=True))


def content_backward(grad: Tensor, saved: ContentSaved) -> tuple[Tensor, Tensor, Tensor]:
    """Gradients of :func:`content_forward` by the chain rule in the module docstring.

    Args:
        grad: ``(B, H, N)`` the gradient at the content weightings.
        saved: from :func:`content_forward`.

    Returns:
        ``(grad_keys (B, H, W), grad_strengths (B, H, 1), grad_memory (B, N, W))``.
    """
    grad_z = softmax_backward(saved.weights, grad)
    grad_strengths = (grad_z * saved.similarity).sum(-1, keepdim=True)
    grad_dots = (grad_z * saved.strengths).div_(saved.denominator)  # dL/d(k.M_i)
    grad_denominator = -grad_dots * saved.similarity  # (B, H, N)
    grad_key_norms = torch.bmm(grad_denominator, saved.row_norms.transpose(1, 2))  # (B, H, 1)
    grad_row_norms = torch.bmm(saved.key_norms.transpose(1, 2), grad_denominator)  # (B, 1, N)
    tiny = torch.finfo(grad.dtype).tiny
    grad_keys = torch.bmm(grad_dots, saved.memory).addcmul_(
        grad_key_norms / saved.key_norms.clamp_min(tiny), saved.keys
    )
    grad_memory = torch.bmm(grad_dots.transpose(1, 2), saved.keys).addcmul_(
        (grad_row_norms / saved.row_norms.clamp_min(tiny)).transpose(1, 2), saved.memory
    )
    return grad_keys, grad_strengths, grad_memory
