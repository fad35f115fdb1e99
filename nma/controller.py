"""The ``Controller`` interface: the network that drives the memory."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from nma.options import Options
from nma.state import State


class Controller(nn.Module):
    """A (possibly recurrent) network stepped once per time step.

    Its input at step ``t`` is the task input concatenated with the memory's reads
    from step ``t-1``; its output feeds the memory interface and the output head.

    Subclasses set ``Config`` and, in ``__init__``, ``output_size``.

    Args:
        config: an instance of ``Config``.
        input_size: width of one step's input.
    """

    Config: ClassVar[type[Options]] = Options
    output_size: int
    passes_input: bool = False
    """Whether the output is the input unchanged (an ``mlp`` without layers), so that
    the model's interface layer embeds the input itself: what an output head tied to
    an input embedding needs (:attr:`nma.Memory.output_embedding`)."""

    def __init__(self, config: Options, input_size: int) -> None:
        super().__init__()
        self.config = config
        self.input_size = input_size

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """The state before the first step (``None`` for a feed-forward controller)."""
        return None

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: ``x`` is ``(B, input_size)``; returns ``((B, output_size), state)``."""
        raise NotImplementedError
