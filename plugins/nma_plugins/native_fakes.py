"""Shapes of the native operators' outputs, for ``torch.compile``.

Tracing a graph that calls ``torch.ops.nma_native.*`` runs each operator on "fake"
tensors, which carry only shapes and dtypes; these functions give those shapes
(registered with :func:`torch.library.register_fake` when the library loads), so the
compiled runs of steps call the native kernels as external kernels. Shapes as in
``csrc/``: ``B`` batch, ``N`` slots, ``W`` width, ``R`` read heads, ``Wh`` write heads,
``H`` heads (or hidden units for the LSTM cell), ``S`` shift offsets.
"""

from __future__ import annotations

import torch
from torch import Tensor

NTM_ROWS, NTM_SCALARS = 6, 8
"""Per-head vectors and scalars the NTM kernel saves (``HeadRow``, ``HeadScalar``)."""
DNC_SHARED_ROWS, DNC_HEAD_ROWS = 12, 6
"""Vectors the DNC kernel saves: shared, and per read head (``Row``, ``HeadRow``)."""


def ntm_forward(
    interface: Tensor, memory: Tensor, write: Tensor, read: Tensor, shifts: int, eps: float
) -> list[Tensor]:
    b, n, w = memory.shape
    wh, r = write.shape[1], read.shape[1]
    h = wh + r
    new = memory.new_empty
    return [
        new(b, r * w), new(b, n, w), new(b, r, n), new(b, wh, n), new(b, h, NTM_ROWS, n),
        new(b, h, NTM_SCALARS), new(b, h, shifts), new(b, wh, w), new(b, wh, w), new(b, n),
    ]  # fmt: skip


def ntm_backward(
    grad_reads: Tensor | None,
    grad_memory: Tensor | None,
    grad_read: Tensor | None,
    grad_write: Tensor | None,
    interface: Tensor,
    memory: Tensor,
    write: Tensor,
    read: Tensor,
    *saved: Tensor,
) -> list[Tensor]:
    b, n, w = memory.shape
    new = memory.new_empty
    return [
        new(b, interface.shape[1]),
        new(b, n, w),
        new(b, write.shape[1], n),
        new(b, read.shape[1], n),
    ]


def dnc_forward(
    interface: Tensor,
    memory: Tensor,
    usage: Tensor,
    link: Tensor,
    precedence: Tensor,
    read: Tensor,
    write: Tensor,
    read_eps: float,
    write_eps: float,
    usage_eps: float,
) -> list[Tensor]:
    b, n, w = memory.shape
    r = read.shape[1]
    new = memory.new_empty
    return [
        new(b, r * w), new(b, n, w), new(b, n), new(b, n, n), new(b, n), new(b, r, n),
        new(b, 1, n), new(b, DNC_SHARED_ROWS + DNC_HEAD_ROWS * r, n),
        memory.new_empty(b, n, dtype=torch.long),
    ]  # fmt: skip


def dnc_backward(*args: object) -> list[Tensor]:
    interface, memory, usage, link, precedence, read, write = args[7:14]
    link_wanted = args[-1]
    b, n, w = memory.shape
    new = memory.new_empty
    return [
        new(b, interface.shape[1]), new(b, n, w), new(b, n),
        new(b, n, n) if link_wanted else new(0), new(b, n), new(b, read.shape[1], n),
        new(b, 1, n),
    ]  # fmt: skip


def lstm_cell_forward(
    x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor
) -> list[Tensor]:
    b, hidden = h.shape
    new = h.new_empty
    return [new(b, hidden), new(b, hidden), new(b, 4 * hidden), new(b, hidden)]


def lstm_cell_backward(
    grad_h: Tensor | None,
    grad_c: Tensor | None,
    x: Tensor,
    h: Tensor,
    c: Tensor,
    w_ih: Tensor,
    w_hh: Tensor,
    gates: Tensor,
    tanh_c: Tensor,
) -> list[Tensor]:
    return [
        torch.empty_like(x), torch.empty_like(h), torch.empty_like(c), torch.empty_like(w_ih),
        torch.empty_like(w_hh), h.new_empty(w_ih.shape[0]), h.new_empty(w_ih.shape[0]),
    ]  # fmt: skip


def lstm_cell_gates_backward(
    grad_h: Tensor | None, grad_c: Tensor | None, c: Tensor, gates: Tensor, tanh_c: Tensor
) -> list[Tensor]:
    return [torch.empty_like(gates), torch.empty_like(c)]


def register() -> None:
    """Register every function above for the operator of the same name."""
    for fake in (
        ntm_forward, ntm_backward, dnc_forward, dnc_backward, lstm_cell_forward,
        lstm_cell_backward, lstm_cell_gates_backward,
    ):  # fmt: skip
        torch.library.register_fake(f"nma_native::{fake.__name__}")(fake)
