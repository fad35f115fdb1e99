"""LSTM controller: a stack of ``nn.LSTMCell`` layers stepped once per time step."""

from __future__ import annotations

from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Controller, Options
from nma_plugins.controllers.lstm_cell import lstm_cell_step


class LSTMState(NamedTuple):
    """Hidden and cell states of every layer.

    Attributes:
        hidden: ``(layers, B, hidden_size)``.
        cell: ``(layers, B, hidden_size)``.
    """

    hidden: Tensor
    cell: Tensor


class LSTMController(Controller):
    """A long short-term memory controller (Hochreiter & Schmidhuber 1997).

    Each layer is an ``nn.LSTMCell`` (stepped as one native autograd node on the CPU,
    :mod:`.lstm_cell`); the output is the last layer's hidden state, ``(B,
    hidden_size)``. The initial state is zero.
    """

    class Config(Options):
        hidden_size: int = Field(100, ge=1, description="Units per LSTM layer.")
        layers: int = Field(1, ge=1, description="Stacked LSTM layers.")

    def __init__(self, config: Config, input_size: int) -> None:
        super().__init__(config, input_size)
        self.output_size = config.hidden_size
        sizes = [input_size] + [config.hidden_size] * (config.layers - 1)
        self.cells = nn.ModuleList(nn.LSTMCell(size, config.hidden_size) for size in sizes)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> LSTMState:
        """Zeros, ``(layers, B, hidden_size)`` each."""
        shape = (self.config.layers, batch_size, self.config.hidden_size)
        zeros = torch.zeros(shape, device=device, dtype=dtype)
        return LSTMState(zeros, zeros.clone())

    def forward(self, x: Tensor, state: LSTMState) -> tuple[Tensor, LSTMState]:
        """One step: ``x`` ``(B, input_size)`` → ``(B, hidden_size)``."""
        hiddens, cells = [], []
        for layer, cell in enumerate(self.cells):
            h, c = lstm_cell_step(cell, x, state.hidden[layer], state.cell[layer])
            hiddens.append(h)
            cells.append(c)
            x = h
        if len(hiddens) == 1:  # a view, not a copy
            return x, LSTMState(hiddens[0].unsqueeze(0), cells[0].unsqueeze(0))
        return x, LSTMState(torch.stack(hiddens), torch.stack(cells))
