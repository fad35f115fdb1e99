"""``MemoryEnhancedRNN``: a recurrent network with any registered memory beside it."""

from __future__ import annotations

from typing import Any

from nma.layers.components import MemorySpec
from nma.models.recurrent_model import RecurrentMemoryModel


class MemoryEnhancedRNN(RecurrentMemoryModel):
    """A GRU (or LSTM) whose every step also reads and writes an external memory.

    The controller is the recurrent network (``cell``); the memory, ``kv`` key-value
    attention by default, is any registered memory or a built one. At every step the
    network sees its input and the previous reads (DESIGN.md, the assembled model).

    ``outputs, state = model(inputs, state=None)``: ``inputs`` ``(T, B, input_size)``
    (``(B, T, input_size)`` with ``batch_first``) → ``outputs`` ``(T, B, output_size)``,
    logits at every step, and the final state.

    Args:
        input_size: width of one step's input.
        hidden_size: the recurrent network's width.
        memory_size: slots of the memory (its ``slots`` option, where it has one).
        memory_dim: width of one slot (its ``width`` and ``key_size``, where it has them).
        output_size: width of one step's output; ``input_size`` if ``None``.
        memory: a registered memory's name or a built :class:`nma.Memory`.
        cell: the recurrent controller, ``gru`` or ``lstm``.
        layers: stacked recurrent layers.
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the memory, with a name.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        output_size: int | None = None,
        *,
        memory: MemorySpec = "kv",
        cell: str = "gru",
        layers: int = 1,
        batch_first: bool = False,
        **memory_options: Any,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            memory_size,
            memory_dim,
            output_size,
            memory=memory,
            controller=cell,
            memory_options=memory_options,
            controller_options={"layers": layers},
            batch_first=batch_first,
        )
