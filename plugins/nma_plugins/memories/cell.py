"""A memory cell: the simplest gated read/write memory.

``N`` slots of width ``W``, addressed by location only: the controller chooses the
slots to write and to read with a softmax over the slots, and two gates decide how
much is written and how much is read. With ``N = 1`` it is a single gated cell, like
the cell state of an LSTM exposed to the controller (Hochreiter & Schmidhuber 1997).
One step, with ``E`` the all-ones ``N × W`` matrix and ``∘`` the elementwise product::

    w^w_t = softmax(l^w_t),  g^w_t = sigmoid(a_t),  v_t = tanh(ṽ_t)
    M_t   = M_{t−1} ∘ (E − g^w_t w^w_t 1ᵀ) + g^w_t w^w_t v_tᵀ          erase and add,
                                                       as NTM eqs. (3)-(4) with e = 1
    w^r_t = softmax(l^r_t),  g^r_t = sigmoid(b_t)
    r_t   = g^r_t M_tᵀ w^r_t                                          read after write

``g^w_t = 0`` leaves the memory unchanged; ``g^w_t = 1`` replaces the addressed slots
by ``v_t``. Shapes: ``B`` batch, ``N`` slots, ``W`` width.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor

from nma import AddressingFactory, Memory, Options


class CellState(NamedTuple):
    """State of :class:`MemoryCellMemory` after a step.

    Attributes:
        memory: ``(B, N, W)`` ``M_t`` (zeros at first).
        read_weights: ``(B, 1, N)`` ``g^r_t w^r_t``.
        write_weights: ``(B, 1, N)`` ``g^w_t w^w_t``.
    """

    memory: Tensor
    read_weights: Tensor
    write_weights: Tensor


class MemoryCellMemory(Memory):
    """Gated read/write slots addressed by location (see the module docstring).

    Interface layout, per step and batch element::

        [ l^w (N) | ṽ (W) | a (1) | l^r (N) | b (1) ]

    so ``interface_size = 2 N + W + 2`` and ``read_size = W``.
    """

    class Config(Options):
        """Options of the memory cell."""

        slots: int = Field(1, ge=1, description="N: slots; 1 is a single gated cell.")
        width: int = Field(20, ge=1, description="W: the width of a slot and of the read.")

    default_addressing = None
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        self.interface_size = 2 * config.slots + config.width + 2
        self.read_size = config.width

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> CellState:
        """Zero memory ``(B, N, W)`` and weightings ``(B, 1, N)``."""
        n, w = self.config.slots, self.config.width
        weights = torch.zeros(batch_size, 1, n, device=device, dtype=dtype)
        memory = torch.zeros(batch_size, n, w, device=device, dtype=dtype)
        return CellState(memory, weights, weights.clone())

    def forward(self, interface: Tensor, state: CellState) -> tuple[Tensor, CellState]:
        """Write, then read: ``interface`` ``(B, 2N + W + 2)`` → reads ``(B, W)``."""
        n, w = self.config.slots, self.config.width
        write_logits, value, write_gate, read_logits, read_gate = interface.split(
            [n, w, 1, n, 1], dim=-1
        )
        write = torch.sigmoid(write_gate) * write_logits.softmax(dim=-1)  # (B, N)
        slot = write.unsqueeze(-1)  # (B, N, 1)
        memory = state.memory * (1 - slot) + slot * torch.tanh(value).unsqueeze(1)
        read = torch.sigmoid(read_gate) * read_logits.softmax(dim=-1)  # (B, N)
        reads = torch.bmm(read.unsqueeze(1), memory).squeeze(1)  # (B, W)
        return reads, CellState(memory, read.unsqueeze(1), write.unsqueeze(1))

    def inspect(self, state: CellState) -> dict[str, Tensor]:
        """``read_weights`` and ``write_weights`` ``(B, 1, N)`` (gates included) and
        ``memory`` ``(B, N, W)``."""
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "memory": state.memory,
        }
