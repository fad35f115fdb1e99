"""``NeuralTuringMachine``: ready-made, on the registered ``ntm`` memory."""

from __future__ import annotations

from typing import Any

from nma.models.recurrent_model import RecurrentMemoryModel


class NeuralTuringMachine(RecurrentMemoryModel):
    """A Neural Turing Machine (Graves, Wayne & Danihelka 2014): an LSTM controller
    driving the ``ntm`` memory, heads addressed by content and location (NTM eqs. 2-9).

    ``outputs, state = model(inputs, state=None)``: ``inputs`` ``(T, B, input_size)``
    (``(B, T, input_size)`` with ``batch_first``) → ``outputs`` ``(T, B, output_size)``,
    logits at every step, and the final state (see
    :class:`~nma.models.recurrent_model.RecurrentMemoryModel`).

    Args:
        input_size: width of one step's input.
        hidden_size: the controller's width.
        memory_size: slots of the memory.
        memory_dim: width of one slot.
        output_size: width of one step's output; ``input_size`` if ``None``.
        read_heads: read heads (each reads ``memory_dim`` values).
        controller: a registered controller, ``lstm`` by default (``lstm``, ``gru``,
            ``mlp``, ``transformer``).
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the ``ntm`` memory (docs/memories.md).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        output_size: int | None = None,
        *,
        read_heads: int = 1,
        controller: str = "lstm",
        batch_first: bool = False,
        **memory_options: Any,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            memory_size,
            memory_dim,
            output_size,
            memory="ntm",
            controller=controller,
            memory_options={"read_heads": read_heads, **memory_options},
            batch_first=batch_first,
        )
