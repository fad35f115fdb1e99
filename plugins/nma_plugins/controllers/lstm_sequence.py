"""An LSTM controller and a memory's native step over a whole sequence, as one node.

Stepped one time step at a time, a model leaves autograd some ten nodes per step (the
cell, the interface map, the memory step, concatenations, views), and the backward
pass multiplies each step's weight gradients separately and adds them into the
weights' gradients one step at a time. :class:`LSTMMemorySequence` runs the same
recurrence (DESIGN.md, "The five interfaces"; the model's :meth:`nma.MemoryModel.cell`)

    a_t = x_t W_x^T + r_{t-1} W_r^T + h_{t-1} W_hh^T + b_ih + b_hh     (W_ih = [W_x | W_r])
    h_t, c_t = LSTM cell(a_t, c_{t-1})                                 (lstm_cell.cpp)
    r_t, m_t = memory step(h_t W_i^T + b_i, m_{t-1})                   (the memory's kernel)

as one autograd node with a hand-written backward pass: the products with ``W_x`` for
all steps are one matrix product before the loop, and the backward loop keeps each
step's gate and interface gradients so that the weight gradients are one product over
all ``T B`` rows each after it, as ``nn.LSTM`` does. The values are those of the
step-by-step model up to rounding (the sums are taken in another order).

A memory offers this through :meth:`nma.Memory.run_with_controller` by handing its
native step to :func:`run_lstm_with_memory` as a :class:`StepKernel`.

Shapes: ``T`` steps, ``B`` batch, ``X`` input size (without the reads), ``H`` hidden
size, ``P`` interface size, ``Q`` read size.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from nma_plugins.controllers.lstm import LSTMController, LSTMState
from nma_plugins.native import native_ops, use_native


class StepKernel(Protocol):
    """A memory step in native code, forward and backward, over a state of tensors."""

    def forward(
        self, interface: Tensor, state: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """One step: ``(reads (B, Q), new state, tensors the backward pass needs)``."""
        ...

    def backward(
        self,
        grad_reads: Tensor | None,
        grad_state: tuple[Tensor | None, ...],
        saved: tuple[Tensor, ...],
        state_wanted: bool,
    ) -> tuple[Tensor, tuple[Tensor | None, ...]]:
        """The gradients at the step's interface ``(B, P)`` and at its previous state,
        from those at its reads and new state (``None``: zero). With ``state_wanted``
        false the gradients at the previous state may be skipped (``None``)."""
        ...


class LSTMMemorySequence(torch.autograd.Function):
    """The whole recurrence as one node. Use :func:`run_lstm_with_memory`.

    ``apply(kernel, inputs, hidden, cell, reads, w_ih, w_hh, b_ih, b_hh, w_i, b_i,
    *state)``; returns ``(hiddens (T, B, H),
    reads (T, B, Q), cell (B, H), *state)`` after the last step.
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
        ops = native_ops()
        steps, batch, x_size = inputs.shape
        w_r = w_ih[:, x_size:]
        # The input's share of every step's gates, biases included: one product.
        pre = torch.addmm(b_ih + b_hh, inputs.reshape(-1, x_size), w_ih[:, :x_size].t())
        pre = pre.view(steps, batch, -1)
        no_bias = torch.zeros_like(b_hh)
        hiddens, all_reads, prev_hiddens, prev_reads = [], [], [], []
        saved: list[Tensor] = []
        counts: list[int] = []
        for t in range(steps):
            prev_hiddens.append(hidden)
            prev_reads.append(reads)
            hidden, new_cell, gates, tanh_cell = ops.lstm_cell_forward(
                reads, hidden, cell, w_r, w_hh, pre[t], no_bias
            )
            reads, state, kernel_saved = kernel.forward(torch.addmm(b_i, hidden, w_i.t()), state)
            saved += [cell, gates, tanh_cell, *kernel_saved]
            counts.append(len(kernel_saved))
            cell = new_cell
            hiddens.append(hidden)
            all_reads.append(reads)
        out_hiddens, out_reads = torch.stack(hiddens), torch.stack(all_reads)
        ctx.save_for_backward(
            inputs, out_hiddens, torch.stack(prev_hiddens), torch.stack(prev_reads),
            w_ih, w_hh, w_i, *saved,
        )  # fmt: skip
        ctx.kernel, ctx.counts = kernel, counts
        ctx.state_wanted = any(ctx.needs_input_grad[11:])
        return (out_hiddens, out_reads, cell, *state)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any,
        grad_hiddens: Tensor | None,
        grad_reads: Tensor | None,
        grad_cell: Tensor | None,
        *grad_state: Tensor | None,
    ) -> tuple[Tensor | None, ...]:
        ops = native_ops()
        inputs, hiddens, prev_hiddens, prev_reads, w_ih, w_hh, w_i, *saved = ctx.saved_tensors
        steps, batch, x_size = inputs.shape
        w_r = w_ih[:, x_size:]
        grad_gates = hiddens.new_empty(steps, batch, w_hh.shape[0])
        grad_interfaces = hiddens.new_empty(steps, batch, w_i.shape[0])
        grad_hidden: Tensor | None = None
        grad_read: Tensor | None = None
        state_grads: tuple[Tensor | None, ...] = tuple(grad_state)
        ends = [0]
        for count in ctx.counts:
            ends.append(ends[-1] + 3 + count)
        for t in reversed(range(steps)):
            cell, gates, tanh_cell, *kernel_saved = saved[ends[t] : ends[t + 1]]
            read_grad = _add(grad_reads[t] if grad_reads is not None else None, grad_read)
            grad_interface, state_grads = ctx.kernel.backward(
                read_grad, state_grads, tuple(kernel_saved), t > 0 or ctx.state_wanted
            )
            grad_interfaces[t] = grad_interface
            hidden_grad = _add(grad_hiddens[t] if grad_hiddens is not None else None, grad_hidden)
            if hidden_grad is None:
                hidden_grad = grad_interface.mm(w_i)
            else:
                hidden_grad = torch.addmm(hidden_grad, grad_interface, w_i)
            gate_grad, grad_cell = ops.lstm_cell_gates_backward(
                hidden_grad, grad_cell, cell, gates, tanh_cell
            )
            grad_gates[t] = gate_grad
            grad_hidden = gate_grad.mm(w_hh)
            grad_read = gate_grad.mm(w_r)
        rows = grad_gates.view(steps * batch, -1)
        interface_rows = grad_interfaces.view(steps * batch, -1)
        grad_w_ih = torch.cat(
            [
                rows.t().mm(inputs.reshape(steps * batch, x_size)),
                rows.t().mm(prev_reads.view(steps * batch, -1)),
            ],
            dim=1,
        )
        grad_w_hh = rows.t().mm(prev_hiddens.view(steps * batch, -1))
        grad_bias = rows.sum(0)
        grad_w_i = interface_rows.t().mm(hiddens.view(steps * batch, -1))
        grad_inputs = None
        if ctx.needs_input_grad[1]:
            grad_inputs = rows.mm(w_ih[:, :x_size]).view(steps, batch, x_size)
        return (
            None, grad_inputs, grad_hidden, grad_cell, grad_read, grad_w_ih, grad_w_hh,
            grad_bias, grad_bias, grad_w_i, interface_rows.sum(0), *state_grads,
        )  # fmt: skip


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def run_lstm_with_memory(
    controller: object,
    interface: nn.Linear,
    kernel: StepKernel,
    inputs: Tensor,
    controller_state: object,
    state: tuple[Tensor, ...],
    reads: Tensor,
) -> tuple[Tensor, Tensor, LSTMState, tuple[Tensor, ...]] | None:
    """The model's recurrence with ``controller`` and a memory's native ``kernel`` as one
    :class:`LSTMMemorySequence` node, or ``None`` where it does not apply: a controller
    other than a one-layer :class:`LSTMController`, tensors off the CPU or of mixed
    or other types than float32/float64, autocast on, an empty sequence.

    Args:
        controller: the model's controller.
        interface: the model's interface map, ``(P, H)`` weight and ``(P,)`` bias.
        kernel: the memory's step.
        inputs: ``(T, B, X)``.
        controller_state: an :class:`LSTMState` with ``(1, B, H)`` tensors.
        state: the memory's state tensors before the first step.
        reads: ``(B, Q)`` the reads of the step before the first.

    Returns:
        ``(hiddens (T, B, H), reads (T, B, Q), controller state, memory state tensors)``.
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
    return hiddens, all_reads, last, tuple(last_state)
