"""``ReasoningNetwork``: ready-made, on the registered ``kv`` memory."""

from __future__ import annotations

from typing import Any

from nma.models.recurrent_model import RecurrentMemoryModel


class ReasoningNetwork(RecurrentMemoryModel):
    """A multi-hop reasoning network in the style of end-to-end memory networks
    (Sukhbaatar et al. 2015): a feed-forward controller with the ``kv`` memory, each read
    taking ``hops`` attention rounds over the stored facts.

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
        hops: attention rounds per read.
        read_heads: attention heads.
        controller: a registered controller, ``mlp`` by default (``lstm``, ``gru``,
            ``mlp``, ``transformer``).
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the ``kv`` memory (docs/memories.md).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        output_size: int | None = None,
        *,
        hops: int = 3,
        read_heads: int = 1,
        controller: str = "mlp",
        batch_first: bool = False,
        **memory_options: Any,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            memory_size,
            memory_dim,
            output_size,
            memory="kv",
            controller=controller,
            memory_options={"hops": hops, "read_heads": read_heads, **memory_options},
            batch_first=batch_first,
        )
