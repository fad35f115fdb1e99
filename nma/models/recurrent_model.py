"""``RecurrentMemoryModel``: the shared shape of the ready-made recurrent models."""

from __future__ import annotations

from typing import Any, ClassVar

from nma.layers.components import MemorySpec
from nma.layers.recurrent import RecurrentMemoryLayer
from nma.registry import get_registry


def sized_options(memory: MemorySpec, memory_size: int, memory_dim: int) -> dict[str, Any]:
    """``slots`` = ``memory_size`` and ``width`` (and ``key_size``) = ``memory_dim``, for
    the options a registered memory has; nothing for a built memory."""
    if not isinstance(memory, str):
        return {}
    fields = get_registry().get("memory", memory).Config.model_fields
    wanted = {"slots": memory_size, "width": memory_dim, "key_size": memory_dim}
    return {key: value for key, value in wanted.items() if key in fields}


class RecurrentMemoryModel(RecurrentMemoryLayer):
    """A controller + memory model sized by ``(memory_size, memory_dim)``.

    The base of the ready-made recurrent models of :mod:`nma.models`: a
    :class:`~nma.layers.RecurrentMemoryLayer` whose output head gives ``output_size``
    values per step (``input_size`` if ``None``, as for sequence-to-sequence tasks such
    as copy). Call it as ``outputs, state = model(inputs, state=None)``: ``inputs``
    ``(T, B, input_size)`` (``(B, T, input_size)`` with ``batch_first``), ``outputs``
    ``(T, B, output_size)`` (or batch-first) — unnormalised scores (logits) at every
    step; the final :class:`~nma.model.ModelState` lets a longer sequence go on.

    Args:
        input_size: width of one step's input.
        hidden_size: the controller's width.
        memory_size: slots of the memory.
        memory_dim: width of one slot.
        output_size: width of one step's output; ``input_size`` if ``None``.
        memory: a registered memory's name or a built :class:`nma.Memory`.
        controller: a registered controller's name.
        memory_options: further options of the memory.
        controller_options: further options of the controller.
        addressing: the addressing scheme, for memories that take one.
        batch_first: inputs and outputs are ``(B, T, ...)``.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int,
        memory_dim: int,
        output_size: int | None = None,
        memory: MemorySpec = "ntm",
        controller: str = "lstm",
        memory_options: dict[str, Any] | None = None,
        controller_options: dict[str, Any] | None = None,
        addressing: str | None = None,
        batch_first: bool = False,
    ) -> None:
        options = {**sized_options(memory, memory_size, memory_dim), **(memory_options or {})}
        super().__init__(
            input_size,
            hidden_size,
            memory=memory,
            controller=controller,
            memory_options=options if isinstance(memory, str) else None,
            controller_options=controller_options,
            addressing=addressing,
            output_size=output_size if output_size is not None else input_size,
            batch_first=batch_first,
        )
        self.memory_size, self.memory_dim = memory_size, memory_dim


class NamedMemoryModel(RecurrentMemoryModel):
    """A :class:`RecurrentMemoryModel` on the registered memory ``memory_name`` (set by
    the subclass), with the seed's constructor: ``(input_size, hidden_size,
    memory_size, memory_dim, output_size=None, *, read_heads=1, controller="lstm",
    batch_first=False, **memory_options)``. The subclasses are the ready-made models
    that differ only in their memory.
    """

    memory_name: ClassVar[str]

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
            memory=self.memory_name,
            controller=controller,
            memory_options={"read_heads": read_heads, **memory_options},
            batch_first=batch_first,
        )
