"""One whole NTM memory step as a single autograd node with a hand-written backward.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401. The step
is the one :meth:`nma_plugins.memories.ntm.NTMMemory.forward` computes through the
composable modules (which stay the reference implementation):

    constraints   beta = softplus, g = sigmoid, s = softmax, gamma = 1 + softplus,
                  e = sigmoid, a = tanh                              (section 3.3)
    addressing    w = sharpen(shift(interpolate(content(k, beta, M_{t-1}))))
                                                                     (eqs. 5-9)
    write         M_t = M_{t-1} o K + sum_h w_h a_h^T,
                  K = prod_h (1 - w_h e_h^T)                         (eqs. 3-4, 3.2)
    read          r = w_r M_t                                        (eq. 2)

Autograd would record some 400 small operations per step for this; here the forward
runs them without recording, and the backward applies the chain rule written out in
:mod:`nma_plugins.addressing.content_fused`, :mod:`nma_plugins.addressing.ntm_fused`
and below. With ``G`` the total gradient at ``M_t`` (from the next step and from the
read), ``K_h`` the keep factor of head ``h`` and ``K_{-h} = prod_{h' != h} K_h'``:

    read:    dL/dw_r = dL/dr M_t^T,     G += w_r^T dL/dr
    write:   dL/da_h = w_h^T G ... (per slot i: sum_i w_h(i) G(i)),
             dL/dw_h(i) = G(i) . a_h - (G(i) o M_{t-1}(i) o K_{-h}(i)) . e_h
             dL/de_h = -sum_i w_h(i) G(i) o M_{t-1}(i) o K_{-h}(i)
             dL/dM_{t-1} = G o K  (+ the content addressing's share)
    constraints: softplus' = sigmoid, sigmoid' = s (1 - s), tanh' = 1 - a^2, and the
             softmax rule of the shift weighting.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R`` for
read heads, ``Wh`` for write heads, ``H = Wh + R`` and ``S = 2 R' + 1`` shift offsets.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from nma_plugins.addressing.content_fused import (
    ContentSaved,
    content_backward,
    content_forward,
    softmax_backward,
)
from nma_plugins.addressing.ntm_fused import LocationSaved, location_backward, location_forward
from nma_plugins.memories.ntm_step_native import NativeNTMStep
from nma_plugins.native import use_native


def keep_factor(write_weights: Tensor, erase: Tensor, skip: int = -1) -> Tensor:
    """``prod_h (1 - w_h e_h^T)`` over the write heads, leaving out head ``skip``.

    Args:
        write_weights: ``(B, Wh, N)``.
        erase: ``(B, Wh, W)``.
        skip: a head to leave out of the product, or ``-1`` for none.

    Returns:
        ``(B, N, W)``.
    """
    one = write_weights.new_ones(1, 1, 1)
    keep = None
    for head in range(write_weights.shape[1]):
        if head != skip:
            factor = torch.addcmul(  # 1 - w_h e_h^T
                one, write_weights[:, head].unsqueeze(-1), erase[:, head : head + 1], value=-1
            )
            keep = factor if keep is None else keep.mul_(factor)
    if keep is None:
        keep = one.expand(write_weights.shape[0], write_weights.shape[2], erase.shape[-1])
    return keep


class NTMStep(torch.autograd.Function):
    """The fused step; see the module docstring. Use :func:`ntm_step`."""

    @staticmethod
    def forward(
        ctx: Any,
        interface: Tensor,
        memory: Tensor,
        write_weights: Tensor,
        read_weights: Tensor,
        width: int,
        shift_size: int,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        with torch.autocast(interface.device.type, enabled=False):
            return NTMStep._forward(
                ctx, interface, memory, write_weights, read_weights, width, shift_size, eps
            )

    @staticmethod
    def _forward(
        ctx: Any,
        interface: Tensor,
        memory: Tensor,
        write_weights: Tensor,
        read_weights: Tensor,
        width: int,
        shift_size: int,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        dtype = memory.dtype
        interface = interface.to(dtype)
        b = interface.shape[0]
        n_write, n_read = write_weights.shape[1], read_weights.shape[1]
        heads = n_write + n_read
        head_size = width + 3 + shift_size
        raw_heads, raw_writes = interface.split([heads * head_size, 2 * n_write * width], 1)
        key, raw_strength, raw_gate, raw_shift, raw_gamma = raw_heads.view(
            b, heads, head_size
        ).split([width, 1, 1, shift_size, 1], -1)
        raw_erase, raw_add = raw_writes.view(b, n_write, 2 * width).split(width, -1)
        strength = F.softplus(raw_strength)
        gate = torch.sigmoid(raw_gate)
        shift = torch.softmax(raw_shift, dim=-1)
        gamma = F.softplus(raw_gamma).add_(1)
        erase = torch.sigmoid(raw_erase)
        add = torch.tanh(raw_add)

        content, content_saved = content_forward(key, strength, memory, eps)
        prev = torch.cat([write_weights.to(dtype), read_weights.to(dtype)], dim=1)
        weights, location_saved = location_forward(content, prev, gate, shift, gamma)
        new_write, new_read = weights.split([n_write, n_read], 1)

        if n_write == 1:
            # M_t = M + w (a - M o e) with one head: ``keep`` holds delta = a - M o e
            keep = torch.addcmul(add, memory, erase, value=-1)
            new_memory = torch.addcmul(memory, new_write.transpose(1, 2), keep)
        else:
            keep = keep_factor(new_write, erase)
            new_memory = torch.baddbmm(memory * keep, new_write.transpose(1, 2), add)
        reads = torch.bmm(new_read, new_memory)

        ctx.save_for_backward(
            memory, new_memory, keep, erase, add, weights, raw_strength, raw_gamma
        )
        ctx.content_saved = content_saved
        ctx.location_saved = location_saved
        ctx.sizes = (width, n_write)
        ctx.input_dtype = interface.dtype
        return reads.reshape(b, n_read * width), new_memory, new_read, new_write

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any,
        grad_reads: Tensor | None,
        grad_memory: Tensor | None,
        grad_read_weights: Tensor | None,
        grad_write_weights: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        memory, new_memory, keep, erase, add, weights, raw_strength, raw_gamma = ctx.saved_tensors
        content_saved: ContentSaved = ctx.content_saved
        location_saved: LocationSaved = ctx.location_saved
        width, n_write = ctx.sizes
        dtype = memory.dtype
        b, heads, n = weights.shape
        n_read = heads - n_write
        new_write, new_read = weights.split([n_write, n_read], 1)

        # G, the total gradient at M_t, and the gradients at this step's weightings.
        grad_new = grad_memory.to(dtype) if grad_memory is not None else None
        if grad_reads is not None:
            grad_r = grad_reads.to(dtype).view(b, n_read, width)
            from_read = torch.bmm(new_read.transpose(1, 2), grad_r)
            grad_new = from_read if grad_new is None else from_read.add_(grad_new)
            grad_read = torch.bmm(grad_r, new_memory.transpose(1, 2))
            if grad_read_weights is not None:
                grad_read += grad_read_weights
        elif grad_read_weights is not None:
            grad_read = grad_read_weights.to(dtype)
        else:
            grad_read = weights.new_zeros(b, n_read, n)
        if grad_new is None:
            grad_new = memory.new_zeros(b, n, width)

        # Write: M_t = M_{t-1} o K + sum_h w_h a_h^T.
        grad_add = torch.bmm(new_write, grad_new)  # (B, Wh, W)
        grad_keep = grad_new * memory  # dL/dK, (B, N, W)
        if n_write == 1:
            # with delta = a - M o e (saved as ``keep``): dL/dw(i) = G(i) . delta(i)
            grad_erase = torch.bmm(new_write, grad_keep).neg_()
            grad_write = (grad_new * keep).sum(-1).unsqueeze(1)
            grad_memory_prev = torch.addcmul(
                grad_new, new_write.transpose(1, 2), grad_new * erase, value=-1
            )
        else:
            grad_write = torch.bmm(add, grad_new.transpose(1, 2))
            grad_erase = torch.empty_like(erase)
            for head in range(n_write):
                partial = grad_keep * keep_factor(new_write, erase, skip=head)
                grad_erase[:, head] = -torch.bmm(new_write[:, head : head + 1], partial)[:, 0]
                grad_write[:, head] -= torch.bmm(
                    erase[:, head : head + 1], partial.transpose(1, 2)
                )[:, 0]
            grad_memory_prev = grad_new * keep
        if grad_write_weights is not None:
            grad_write += grad_write_weights

        # Addressing, eqs. (5)-(9).
        grad_weights = torch.cat([grad_write, grad_read], 1)
        grad_content, grad_prev, grad_gate, grad_shift, grad_gamma = location_backward(
            grad_weights, location_saved
        )
        grad_key, grad_strength, grad_memory_content = content_backward(grad_content, content_saved)
        grad_memory_prev += grad_memory_content

        # Constraints, back to the raw interface.
        gate = location_saved.gate
        grad_heads = torch.cat(
            [
                grad_key,
                grad_strength * torch.sigmoid(raw_strength),
                grad_gate * torch.addcmul(gate, gate, gate, value=-1),
                softmax_backward(location_saved.shift, grad_shift),
                grad_gamma * torch.sigmoid(raw_gamma),
            ],
            -1,
        )
        grad_writes = torch.cat(
            [
                grad_erase * torch.addcmul(erase, erase, erase, value=-1),
                grad_add * torch.addcmul(torch.ones_like(add), add, add, value=-1),
            ],
            -1,
        )
        grad_interface = torch.cat([grad_heads.view(b, -1), grad_writes.view(b, -1)], dim=1)
        grad_prev_write, grad_prev_read = grad_prev.split([n_write, n_read], 1)
        return (
            grad_interface.to(ctx.input_dtype),
            grad_memory_prev,
            grad_prev_write,
            grad_prev_read,
            None,
            None,
            None,
        )


def ntm_step(
    interface: Tensor,
    memory: Tensor,
    write_weights: Tensor,
    read_weights: Tensor,
    width: int,
    shift_size: int,
    eps: float,
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """One NTM memory step with the ``ntm`` addressing, as one autograd node: the
    native kernels' (:mod:`.ntm_step_native`) on the CPU where they are available, else
    :class:`NTMStep`.

    Args:
        interface: ``(B, (Wh + R)(W + 3 + S) + 2 Wh W)`` raw controller outputs, laid out
            as in :class:`nma_plugins.memories.ntm.NTMMemory`.
        memory: ``(B, N, W)`` ``M_{t-1}``.
        write_weights: ``(B, Wh, N)`` the write heads' previous weightings.
        read_weights: ``(B, R, N)`` the read heads' previous weightings.
        width: ``W``.
        shift_size: ``S``, the number of shift offsets (at most ``2 N + 1``).
        eps: the cosine similarity's ``eps``.

    Returns:
        ``(reads (B, R W), memory (B, N, W), read_weights (B, R, N),
        write_weights (B, Wh, N))``.
    """
    if use_native(memory, interface, write_weights, read_weights):
        return NativeNTMStep.apply(interface, memory, write_weights, read_weights, shift_size, eps)
    return NTMStep.apply(interface, memory, write_weights, read_weights, width, shift_size, eps)
