"""The NTM's location addressing with hand-written backward passes, for fused steps.

The same stages as :mod:`nma_plugins.addressing.ntm` (Graves, Wayne & Danihelka
2014, arXiv:1410.5401, section 3.3.2), computed without autograd so that a memory's
fused step (a ``torch.autograd.Function``) can call the forward functions in its
forward pass and the backward functions in its backward pass:

    w_g   = g w_c + (1 - g) w_{t-1}                          interpolation  (eq. 7)
    w~(i) = sum_k s(k) w_g(i - k + R),  indices modulo N     circular shift (eq. 8)
    w(i)  = w~(i)^gamma / sum_j w~(j)^gamma                  sharpening     (eq. 9)

Gradients, with ``G`` the gradient arriving at each stage's output:

    eq. 7:  dL/dw_c = g G,   dL/dw_{t-1} = (1 - g) G,   dL/dg = sum_i G_i (w_c(i) - w_{t-1}(i))
    eq. 8:  dL/ds(k) = sum_i G_i w_g(i - k + R),   dL/dw_g(j) = sum_k s(k) G_{j + k - R}
    eq. 9:  with q = w~ / max w~ + tiny and z = gamma log q, w = softmax(z), so
            dL/dz = w (G - sum_j w_j G_j),   dL/dgamma = sum_i dL/dz_i log q_i,
            dL/dw~(i) = gamma dL/dz_i / q_i / max w~

Dividing by ``max w~`` leaves eq. (9) unchanged (it is invariant to a common scale),
so its own gradient contribution is zero and is not computed. ``dL/dz_i / q_i`` is
evaluated as ``(G_i - sum_j w_j G_j) exp((gamma - 1) log q_i - log sum_j q_j^gamma)``,
which stays accurate where ``q_i`` is near the smallest normal number.

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for slots and ``S = 2R + 1``
for the shift offsets ``-R..R``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor


def circular_pad(weights: Tensor, shift_range: int) -> Tensor:
    """``(B, H, N + 2R)``: ``out[p] = weights[(p - R) mod N]``, for ``R <= N``."""
    n = weights.shape[-1]
    return torch.cat([weights[..., n - shift_range :], weights, weights[..., :shift_range]], dim=-1)


def _windows(padded: Tensor, n: int) -> Tensor:
    """``(B H, S, N)``: ``out[b, m, i] = padded[b, i + m]`` (a copy, contiguous)."""
    return padded.reshape(-1, padded.shape[-1]).unfold(-1, n, 1).contiguous()


class LocationSaved(NamedTuple):
    """What :func:`location_backward` needs from :func:`location_forward`.

    Attributes:
        content: ``(B, H, N)`` content weightings ``w_c``.
        prev_weights: ``(B, H, N)`` ``w_{t-1}``.
        gate: ``(B, H, 1)`` ``g``.
        shift: ``(B, H, S)`` ``s``.
        gamma: ``(B, H, 1)``.
        windows: ``(B H, S, N)`` the circularly padded ``w_g`` cut into windows.
        scale: ``(B, H, 1)`` ``max_i w~(i)``.
        log_q: ``(B, H, N)`` ``log q``.
        log_norm: ``(B, H, 1)`` ``log sum_j q_j^gamma``.
        weights: ``(B, H, N)`` the final weightings ``w``.
    """

    content: Tensor
    prev_weights: Tensor
    gate: Tensor
    shift: Tensor
    gamma: Tensor
    windows: Tensor
    scale: Tensor
    log_q: Tensor
    log_norm: Tensor
    weights: Tensor


def location_forward(
    content: Tensor, prev_weights: Tensor, gate: Tensor, shift: Tensor, gamma: Tensor
) -> tuple[Tensor, LocationSaved]:
    """Interpolation, circular shift and sharpening, NTM eqs. (7)-(9).

    Args:
        content: ``(B, H, N)`` content weightings.
        prev_weights: ``(B, H, N)`` the previous weightings.
        gate: ``(B, H, 1)`` interpolation gates in ``[0, 1]``.
        shift: ``(B, H, S)`` shift weightings over the offsets ``-R..R`` (``R <= N``).
        gamma: ``(B, H, 1)`` sharpening exponents ``>= 1``.

    Returns:
        ``(weights, saved)``: ``(B, H, N)`` weightings, each row summing to 1.
    """
    b, h, n = content.shape
    s = shift.shape[-1]
    gated = torch.lerp(prev_weights, content, gate)  # eq. (7)
    windows = _windows(circular_pad(gated, (s - 1) // 2), n)  # (BH, S, N)
    # eq. (8): w~(i) = sum_m s(2R - m) padded(i + m)
    shifted = torch.bmm(shift.reshape(b * h, 1, s).flip(-1), windows).reshape(b, h, n)
    scale = shifted.amax(dim=-1, keepdim=True)
    log_q = shifted.div_(scale).add_(torch.finfo(shifted.dtype).tiny).log_()
    # q <= 1 + tiny with equality at the maximum, so exp(gamma log q) cannot overflow
    # and its sum is at least 1: no max-subtraction needed.
    powered = (gamma * log_q).exp_()
    norm = powered.sum(-1, keepdim=True)
    weights = powered.div_(norm)  # eq. (9)
    log_norm = norm.log_()
    saved = LocationSaved(
        content, prev_weights, gate, shift, gamma, windows, scale, log_q, log_norm, weights
    )
    return weights, saved


def location_backward(
    grad: Tensor, saved: LocationSaved
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Gradients of :func:`location_forward` (module docstring).

    Args:
        grad: ``(B, H, N)`` the gradient at the final weightings.
        saved: from :func:`location_forward`.

    Returns:
        ``(grad_content, grad_prev_weights, grad_gate, grad_shift, grad_gamma)`` with
        the shapes of the corresponding inputs.
    """
    b, h, n = grad.shape
    s = saved.shift.shape[-1]
    centred = grad - (grad * saved.weights).sum(-1, keepdim=True)
    grad_gamma = (centred * saved.weights * saved.log_q).sum(-1, keepdim=True)
    # gamma dL/dz_i / q_i / max w~, with dL/dz_i / q_i = centred_i w_i / q_i
    ratio = torch.addcmul(-saved.log_norm, saved.gamma - 1, saved.log_q).exp_()
    grad_shifted = centred.mul_(ratio).mul_(saved.gamma / saved.scale)
    flat = grad_shifted.reshape(b * h, n, 1)
    grad_shift = torch.bmm(saved.windows, flat).reshape(b, h, s).flip(-1)
    grad_windows = _windows(circular_pad(grad_shifted, (s - 1) // 2), n)
    grad_gated = torch.bmm(saved.shift.reshape(b * h, 1, s), grad_windows).reshape(b, h, n)
    grad_gate = (grad_gated * (saved.content - saved.prev_weights)).sum(-1, keepdim=True)
    grad_content = grad_gated * saved.gate
    grad_prev = grad_gated.sub_(grad_content)
    return grad_content, grad_prev, grad_gate, grad_shift, grad_gamma
