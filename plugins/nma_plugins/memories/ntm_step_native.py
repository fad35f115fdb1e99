"""The fused NTM step on the native CPU kernels (``csrc/ntm_step.cpp``).

The same step and the same hand-written backward pass as :class:`.ntm_step.NTMStep`
(Graves, Wayne & Danihelka 2014, arXiv:1410.5401, eqs. 2-9 and section 3.3), each
direction one call into ``torch.ops.nma_native``; :func:`.ntm_step.ntm_step` picks
this node on the CPU when :func:`nma_plugins.native.use_native` allows.

Shapes as in :mod:`.ntm_step`: ``B`` batch, ``N`` slots, ``W`` width, ``Wh`` write
heads, ``R`` read heads.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nma_plugins.native import native_ops


class NativeNTMStep(torch.autograd.Function):
    """The fused step in native code. Use :func:`.ntm_step.ntm_step`."""

    @staticmethod
    def forward(
        ctx: Any,
        interface: Tensor,
        memory: Tensor,
        write_weights: Tensor,
        read_weights: Tensor,
        shift_size: int,
        eps: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        reads, new_memory, new_read, new_write, *saved = native_ops().ntm_forward(
            interface, memory, write_weights, read_weights, shift_size, eps
        )
        ctx.save_for_backward(interface, memory, write_weights, read_weights, new_memory, *saved)
        ctx.input_dtype = interface.dtype
        return reads, new_memory, new_read, new_write

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any,
        grad_reads: Tensor | None,
        grad_memory: Tensor | None,
        grad_read_weights: Tensor | None,
        grad_write_weights: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        grad_interface, grad_memory_prev, grad_write, grad_read = native_ops().ntm_backward(
            grad_reads, grad_memory, grad_read_weights, grad_write_weights, *ctx.saved_tensors
        )
        return (
            grad_interface.to(ctx.input_dtype),
            grad_memory_prev,
            grad_write,
            grad_read,
            None,
            None,
        )
