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


class DNCKernel:
    """The native step as a :class:`nma_plugins.controllers.lstm_sequence.StepKernel`
    over the state ``(memory, usage, link, precedence, read_weights, write_weights)``
    (the order of :class:`nma_plugins.memories.dnc.DNCState`).

    Args:
        read_eps: the read heads' cosine similarity ``eps``.
        write_eps: the write head's cosine similarity ``eps``.
        usage_eps: the allocation's floor inside the logarithm.
    """

    def __init__(self, read_eps: float, write_eps: float, usage_eps: float) -> None:
        self.read_eps = read_eps
        self.write_eps = write_eps
        self.usage_eps = usage_eps

    def forward(
        self, interface: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        reads, *new_state, rows, free_list = native_ops().dnc_forward(
            interface, *state, self.read_eps, self.write_eps, self.usage_eps
        )
        memory, usage, link, precedence, read_weights, write_weights = state
        new_memory, _, _, _, new_read, new_write = new_state
        kept = (
            interface, memory, usage, link, precedence, read_weights, write_weights,
            new_memory, new_read, new_write, rows, free_list,
        )  # fmt: skip
        return reads, tuple(new_state), kept

    def backward(
        self,
        grad_reads: Tensor | None,
        grad_state: tuple[Tensor | None, ...],
        saved: tuple[Tensor, ...],
        state_wanted: bool,
    ) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        grad_interface, *grad_prev = native_ops().dnc_backward(
            grad_reads, *grad_state, *saved, self.usage_eps, state_wanted
        )
        if not state_wanted:
            grad_prev[2] = None
        return grad_interface, tuple(grad_prev)
