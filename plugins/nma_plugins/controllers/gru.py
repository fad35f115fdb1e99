"""GRU controller: a stack of gated recurrent units stepped once per time step.

Cho, van Merriënboer, Gulcehre et al. (2014), "Learning Phrase Representations using
RNN Encoder-Decoder for Statistical Machine Translation", EMNLP, §2.3, eqs. (5)-(8).
For one layer with input ``x`` and previous hidden state ``h``::

    r  = sigmoid(W_r x + b_ir + U_r h + b_hr)                     reset gate, eq. (5)
    z  = sigmoid(W_z x + b_iz + U_z h + b_hz)                     update gate, eq. (6)
    n  = tanh(W_n x + b_in + U_n (r ∘ h) + b_hn)                  candidate, eq. (8)
    h' = z ∘ h + (1 − z) ∘ n                                      eq. (7)

With ``reset_after`` (the default) the reset gate multiplies the recurrent term after
the matrix product, ``n = tanh(W_n x + b_in + r ∘ (U_n h + b_hn))``: the variant of
``torch.nn.GRUCell`` and cuDNN, which lets all three recurrent products be one matrix
product. Both variants hold their weights in ``nn.GRUCell``'s layout (gates in the
order r, z, n).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Controller, Options


class GRUState(NamedTuple):
    """Hidden state of every layer.

    Attributes:
        hidden: ``(layers, B, hidden_size)``.
    """

    hidden: Tensor


class GRUController(Controller):
    """A gated recurrent unit controller (Cho et al. 2014), ``layers`` cells stacked.

    The output is the last layer's hidden state, ``(B, hidden_size)``; the initial
    state is zero.
    """

    class Config(Options):
        hidden_size: int = Field(100, ge=1, description="Units per GRU layer.")
        layers: int = Field(1, ge=1, description="Stacked GRU layers.")
        reset_after: bool = Field(
            True,
            description=(
                "Apply the reset gate after the recurrent matrix product, as nn.GRUCell "
                "and cuDNN do; false gives Cho et al.'s eq. (8), U (r * h)."
            ),
        )

    config: Config

    def __init__(self, config: Config, input_size: int) -> None:
        super().__init__(config, input_size)
        self.output_size = config.hidden_size
        sizes = [input_size] + [config.hidden_size] * (config.layers - 1)
        self.cells = nn.ModuleList(nn.GRUCell(size, config.hidden_size) for size in sizes)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> GRUState:
        """Zeros, ``(layers, B, hidden_size)``."""
        shape = (self.config.layers, batch_size, self.config.hidden_size)
        return GRUState(torch.zeros(shape, device=device, dtype=dtype))

    def forward(self, x: Tensor, state: GRUState) -> tuple[Tensor, GRUState]:
        """One step: ``x`` ``(B, input_size)`` → ``(B, hidden_size)``."""
        hiddens = []
        for layer, cell in enumerate(self.cells):
            h = state.hidden[layer]
            x = cell(x, h) if self.config.reset_after else _reset_before(cell, x, h)
            hiddens.append(x)
        return x, GRUState(torch.stack(hiddens))


def _reset_before(cell: nn.GRUCell, x: Tensor, h: Tensor) -> Tensor:
    """Eqs. (5)-(8) as printed: the reset gate scales ``h`` before ``U_n``.

    Args:
        cell: holds ``W = weight_ih`` ``(3H, I)``, ``U = weight_hh`` ``(3H, H)`` and
            their biases, gates in the order r, z, n.
        x: ``(B, I)``.
        h: ``(B, H)``.

    Returns:
        ``h'`` ``(B, H)``.
    """
    size = h.shape[-1]
    gx = nn.functional.linear(x, cell.weight_ih, cell.bias_ih)  # (B, 3H)
    u_rz, u_n = cell.weight_hh[: 2 * size], cell.weight_hh[2 * size :]
    b_rz, b_n = cell.bias_hh[: 2 * size], cell.bias_hh[2 * size :]
    r, z = torch.sigmoid(gx[:, : 2 * size] + nn.functional.linear(h, u_rz, b_rz)).chunk(2, -1)
    n = torch.tanh(gx[:, 2 * size :] + nn.functional.linear(r * h, u_n, b_n))
    return z * h + (1 - z) * n
