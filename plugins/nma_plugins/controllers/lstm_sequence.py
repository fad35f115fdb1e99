"""An LSTM controller and a memory's native step over a whole sequence, as one node.

Stepped one time step at a time, a model leaves autograd some ten nodes per step (the
cell, the interface map, the memory step, concatenations, views), and the backward
pass multiplies each step's weight gradients separately and adds them into the
weights' gradients one step at a time. :class:`LSTMMemorySequence` runs the same
recurrence (DESIGN.md, "The five interfaces"; the model's :meth:`nma.MemoryModel.cell`)

    a_t = x_t W_x^T + r_{t-1} W_r^T + h_{t-1} W_hh^T + b_ih + b_hh     (W_ih = [W_x | W_r])
    h_t, c_t = LSTM cell(a_t, c_{t-1})                                 (lstm_cell.cpp)
    r_t, m_t = memory step(h_t W_i^T + b_i, m_{t-1})                   (the memory's kernel)

as one autograd node whose forward and backward passes are each one call into the
native kernels (``csrc/lstm_sequence.cpp``, which loops over the steps in C++ and
calls the LSTM cell's and the memory step's kernels): the products with ``W_x`` for
all steps are one matrix product before the loop, and the backward loop keeps each
step's gate and interface gradients so that the weight gradients are one product over
all ``T B`` rows each after it, as ``nn.LSTM`` does. The values are those of the
step-by-step model up to rounding (the sums are taken in another order).

A memory offers this through :meth:`nma.Memory.run_with_controller` by naming its
native step to :func:`run_lstm_with_memory` as a :class:`StepKernel`.

Shapes: ``T`` steps, ``B`` batch, ``X`` input size (without the reads), ``H`` hidden
size, ``P`` interface size, ``Q`` read size.
"""

from __future__ import annotations

from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor, nn

from nma_plugins.controllers.lstm import LSTMController, LSTMState
from nma_plugins.native import native_ops, use_native

S = TypeVar("S", bound=tuple)
"""A memory's state: a NamedTuple of tensors."""


class StepKernel(NamedTuple):
    """A memory step that ``csrc/lstm_sequence.cpp`` chains: ``kind`` 0 is the NTM
    step (``params``: shift offsets, cosine ``eps``; state: memory, read weightings,
    write weightings), 1 the DNC step (``params``: read, write and usage ``eps``;
    state: memory, usage, link, precedence, read weightings, write weighting)."""

    kind: int
    params: tuple[float, ...]


class LSTMMemorySequence(torch.autograd.Function):
    """The whole recurrence as one node. Use :func:`run_lstm_with_memory`.

    ``apply(kernel, inputs, hidden, cell, reads, w_ih, w_hh, b_ih, b_hh, w_i, b_i,
    *state)``; returns ``(hiddens (T, B, H), reads (T, B, Q), cell (B, H), *state)``
    after the last step. Forward and backward are one native call each
    (``nma_native::lstm_memory_forward`` and ``lstm_memory_backward``).
    """

    @staticmethod
    def forward(
        ctx: Any,
        kernel: StepKernel,
        inputs: Tensor,
        hidden: Tensor,
        cell: Tensor,
        reads: Tensor,
        w_ih: Tensor,
        w_hh: Tensor,
        b_ih: Tensor,
        b_hh: Tensor,
        w_i: Tensor,
        b_i: Tensor,
        *state: Tensor,
    ) -> tuple[Tensor, ...]:
        ctx.set_materialize_grads(False)
        outputs = native_ops().lstm_memory_forward(
            kernel.kind, list(kernel.params), inputs, hidden, cell, reads, list(state),
            w_ih, w_hh, b_ih, b_hh, w_i, b_i,
        )  # fmt: skip
        parts = 3 + len(state)
        hiddens, all_reads = outputs[0], outputs[1]
        ctx.save_for_backward(
            inputs, hidden, reads, hiddens, all_reads, w_ih, w_hh, w_i, *outputs[parts:]
        )
        ctx.kernel = kernel
        ctx.state_wanted = any(ctx.needs_input_grad[11:])
        return tuple(outputs[:parts])

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any,
        grad_hiddens: Tensor | None,
        grad_reads: Tensor | None,
        grad_cell: Tensor | None,
        *grad_state: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        inputs, hidden, reads, hiddens, all_reads, w_ih, w_hh, w_i, *saved = ctx.saved_tensors
        kernel = ctx.kernel
        grads = native_ops().lstm_memory_backward(
            kernel.kind, list(kernel.params), grad_hiddens, grad_reads, grad_cell,
            list(grad_state), inputs, hidden, reads, hiddens, all_reads, w_ih, w_hh, w_i,
            saved, ctx.state_wanted, ctx.needs_input_grad[1],
        )  # fmt: skip
        grad_inputs, grad_hidden, grad_cell_0, grad_read, grad_w_ih, grad_w_hh = grads[:6]
        grad_bias, grad_w_i, grad_b_i, *state_grads = grads[6:]
        return (
            None,
            grad_inputs if ctx.needs_input_grad[1] else None,
            grad_hidden, grad_cell_0, grad_read, grad_w_ih, grad_w_hh, grad_bias, grad_bias,
            grad_w_i, grad_b_i,
            *(g if ctx.state_wanted else None for g in state_grads),
        )  # fmt: skip


def run_lstm_with_memory(
    controller: object,
    interface: nn.Linear,
    kernel: StepKernel,
    inputs: Tensor,
    controller_state: object,
    state: S,
    reads: Tensor,
) -> tuple[Tensor, Tensor, LSTMState, S] | None:
    """The model's recurrence with ``controller`` and a memory's native ``kernel`` as one
    :class:`LSTMMemorySequence` node, or ``None`` where it does not apply: a controller
    other than a one-layer :class:`LSTMController`, tensors off the CPU or of mixed
    or other types than float32/float64, autocast on, an empty sequence. What a
    memory's :meth:`nma.Memory.run_with_controller` returns.

    Args:
        controller: the model's controller.
        interface: the model's interface map, ``(P, H)`` weight and ``(P,)`` bias.
        kernel: the memory's step.
        inputs: ``(T, B, X)``.
        controller_state: an :class:`LSTMState` with ``(1, B, H)`` tensors.
        state: the memory's state before the first step, a NamedTuple of tensors in the
            kernel's order.
        reads: ``(B, Q)`` the reads of the step before the first.

    Returns:
        ``(hiddens (T, B, H), reads (T, B, Q), controller state, memory state)``, the
        memory state of the same NamedTuple type as ``state``.
    """
    if not isinstance(controller, LSTMController) or len(controller.cells) != 1:
        return None
    if not isinstance(controller_state, LSTMState) or inputs.shape[0] == 0:
        return None
    module = controller.cells[0]
    weights = (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)
    if not module.bias or interface.bias is None:
        return None
    hidden, cell = controller_state.hidden[0], controller_state.cell[0]
    tensors = (inputs, hidden, cell, reads, *weights, interface.weight, interface.bias, *state)
    dtype = inputs.dtype
    if any(t.dtype != dtype for t in tensors) or torch.is_autocast_enabled(inputs.device.type):
        return None
    if not use_native(hidden, *tensors):
        return None
    hiddens, all_reads, last_cell, *last_state = LSTMMemorySequence.apply(
        kernel, inputs, hidden, cell, reads, *weights, interface.weight,
        interface.bias, *state,
    )  # fmt: skip
    last = LSTMState(hiddens[-1].unsqueeze(0), last_cell.unsqueeze(0))
    return hiddens, all_reads, last, type(state)(*last_state)
