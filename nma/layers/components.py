"""Turn what a user passes to a layer (a registered name or a module) into a component."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from nma.build import build_memory
from nma.memory import Memory

MemorySpec = str | Memory
"""A registered memory's name (``"dnc"``) or a built :class:`nma.Memory`."""


def resolve_memory(
    memory: MemorySpec,
    options: dict[str, Any] | None = None,
    addressing: str | None = None,
    addressing_options: dict[str, Any] | None = None,
) -> Memory:
    """The memory a layer was given: built through the registry when it is a name.

    Args:
        memory: a registered memory's name, or a built :class:`nma.Memory`.
        options: the memory's options, only with a name.
        addressing: the addressing scheme's name, only with a name (``None``: the
            memory's default).
        addressing_options: the scheme's options, only with a name.

    Raises:
        UsageError: an unknown name or invalid options.
        TypeError: options given with a built memory, or neither a name nor a memory.
    """
    if isinstance(memory, Memory):
        if options or addressing or addressing_options:
            raise TypeError("options and addressing go with a memory's name, not a built memory")
        return memory
    if isinstance(memory, str):
        return build_memory(memory, options, addressing, addressing_options)
    raise TypeError(f"memory must be a registered name or an nma.Memory, not {memory!r}")


def to_time_major(inputs: Tensor, batch_first: bool) -> Tensor:
    """``(B, T, F)`` → ``(T, B, F)`` when ``batch_first``; time-major input unchanged."""
    return inputs.transpose(0, 1) if batch_first else inputs
