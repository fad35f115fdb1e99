"""``TemporalMemoryModel``: ready-made, on the registered ``hierarchical`` memory."""

from __future__ import annotations

from typing import Any

from nma.models.recurrent_model import RecurrentMemoryModel


class TemporalMemoryModel(RecurrentMemoryModel):
    """A model for long sequences with structure at several time scales: an LSTM
    controller with the ``hierarchical`` memory (levels written every ``period^l`` steps,
    consolidated from the level below, read through learned routing).

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
        levels: memory levels; ``memory_size`` is the slots of level 0.
        period: level ``l`` is written every ``period^l`` steps.
        controller: a registered controller, ``lstm`` by default (``lstm``, ``gru``,
            ``mlp``, ``transformer``).
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the ``hierarchical`` memory (docs/memories.md).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        output_size: int | None = None,
        *,
        levels: int = 3,
        period: int = 4,
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
            memory="hierarchical",
            controller=controller,
            memory_options={"levels": levels, "period": period, **memory_options},
            batch_first=batch_first,
        )
