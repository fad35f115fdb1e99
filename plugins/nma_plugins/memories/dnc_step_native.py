"""The fused DNC step on the native CPU kernels (``csrc/dnc_step.cpp``).

The same step and the same hand-written backward pass as :class:`.dnc_step.DNCStep`
(Graves et al. 2016, Nature 538, Methods; the equations (F1)-(F12) and (B12)-(B1) of
:mod:`.dnc_step`), each direction one call into ``torch.ops.nma_native``;
:func:`.dnc_step.dnc_step` picks this node on the CPU when
:func:`nma_plugins.native.use_native` allows.

Shapes as in :mod:`.dnc_step`: ``B`` batch, ``N`` slots, ``W`` width, ``R`` read heads.
Besides the inputs and ``M_t``, the backward pass keeps ``(B, 12 + 6 R, N)`` vectors
and the free list; like the Python step, no ``N x N`` tensor but the input ``L_{t-1}``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nma_plugins.native import native_ops


class NativeDNCStep(torch.autograd.Function):
    """The fused step in native code. Use :func:`.dnc_step.dnc_step`."""

    @staticmethod
    def forward(
        ctx: Any,
        interface: Tensor,
        memory: Tensor,
        usage: Tensor,
        link: Tensor,
        precedence: Tensor,
        read_weights: Tensor,
        write_weights: Tensor,
        read_eps: float,
        write_eps: float,
        usage_eps: float,
    ) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        outputs = native_ops().dnc_forward(
            interface, memory, usage, link, precedence, read_weights, write_weights,
            read_eps, write_eps, usage_eps,
        )  # fmt: skip
        reads, new_memory, new_usage, new_link, new_precedence, read, write, rows, free_list = (
            outputs
        )
        ctx.save_for_backward(
            interface, memory, usage, link, precedence, read_weights, write_weights,
            new_memory, read, write, rows, free_list,
        )  # fmt: skip
        ctx.usage_eps = usage_eps
        ctx.input_dtype = interface.dtype
        ctx.mark_non_differentiable(free_list)
        return reads, new_memory, new_usage, new_link, new_precedence, read, write

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: Tensor | None) -> tuple[Tensor | None, ...]:
        g_interface, *g_state = native_ops().dnc_backward(
            *grads, *ctx.saved_tensors, ctx.usage_eps, ctx.needs_input_grad[3]
        )
        g_memory, g_usage, g_link, g_precedence, g_read, g_write = g_state
        return (
            g_interface.to(ctx.input_dtype),
            g_memory,
            g_usage,
            g_link if ctx.needs_input_grad[3] else None,
            g_precedence,
            g_read,
            g_write,
            None,
            None,
            None,
        )
