"""One ``nn.LSTMCell`` step as a single autograd node on the native CPU kernels.

The cell computes what ``torch.nn.LSTMCell`` computes (Hochreiter & Schmidhuber 1997;
gates in PyTorch's order input, forget, cell, output):

    a = x W_ih^T + b_ih + h W_hh^T + b_hh,   i, f, o = sigmoid(.),   g = tanh(.)
    c' = f o c + i o g,                      h' = o o tanh(c')

``nn.LSTMCell`` leaves autograd a dozen nodes per step (two linear maps, the gate
activations, the products); here the forward is two matrix products and one loop, and
the backward (written out in ``csrc/lstm_cell.cpp``) one loop and five matrix
products. :func:`lstm_cell_step` uses it on the CPU when
:func:`nma_plugins.native.use_native` allows and autocast is off, and the module
itself otherwise.

Shapes: ``B`` batch, ``I`` input size, ``H`` hidden size.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nma_plugins.native import native_ops, use_native


class NativeLSTMCell(torch.autograd.Function):
    """The fused cell step. Use :func:`lstm_cell_step`."""

    @staticmethod
    def forward(
        ctx: Any,
        x: Tensor,
        hidden: Tensor,
        cell: Tensor,
        weight_ih: Tensor,
        weight_hh: Tensor,
        bias_ih: Tensor,
        bias_hh: Tensor,
    ) -> tuple[Tensor, Tensor]:
        ctx.set_materialize_grads(False)
        new_hidden, new_cell, gates, tanh_cell = native_ops().lstm_cell_forward(
            x, hidden, cell, weight_ih, weight_hh, bias_ih, bias_hh
        )
        ctx.save_for_backward(x, hidden, cell, weight_ih, weight_hh, gates, tanh_cell)
        return new_hidden, new_cell

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(
        ctx: Any, grad_hidden: Tensor | None, grad_cell: Tensor | None
    ) -> tuple[Tensor | None, ...]:
        return tuple(native_ops().lstm_cell_backward(grad_hidden, grad_cell, *ctx.saved_tensors))


def lstm_cell_step(
    module: nn.LSTMCell, x: Tensor, hidden: Tensor, cell: Tensor
) -> tuple[Tensor, Tensor]:
    """``module(x, (hidden, cell))``, as one native autograd node where possible.

    Args:
        module: the cell whose weights to use.
        x: ``(B, I)``.
        hidden: ``(B, H)`` ``h``.
        cell: ``(B, H)`` ``c``.

    Returns:
        ``(h', c')``, ``(B, H)`` each.
    """
    weights = (module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh)
    if (
        module.bias
        and not torch.is_autocast_enabled(x.device.type)
        and all(w.dtype == x.dtype == hidden.dtype == cell.dtype for w in weights)
        and use_native(hidden, x, cell, *weights)
    ):
        return NativeLSTMCell.apply(x, hidden, cell, *weights)
    return module(x, (hidden, cell))
