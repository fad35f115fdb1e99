"""``RegisteredMemory``: a named class that stands for a memory in the registry."""

from __future__ import annotations

from typing import Any, ClassVar

from nma.build import build_memory
from nma.options import Options
from nma.wrapped_memory import WrappedMemory


class RegisteredMemory(WrappedMemory):
    """A memory built through the registry, under a name of the Python API.

    Subclasses set ``registered`` (the plugin's name) and map ``memory_size`` and
    ``memory_dim`` to its options in :meth:`sized_options`. The instance is an
    :class:`nma.Memory` that hands every call to the registered memory, ``.memory``.

    Args:
        memory_size: slots (rows) of the memory.
        memory_dim: width of one slot.
        addressing: the addressing scheme, for memories that take one (``None``:
            their default).
        addressing_options: that scheme's options.
        options: any further option of the registered memory (``read_heads=2``, ...;
            ``nma info memory NAME`` lists them).
    """

    registered: ClassVar[str]

    def __init__(
        self,
        memory_size: int = 128,
        memory_dim: int = 20,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        super().__init__(Options())
        settings = {**self.sized_options(memory_size, memory_dim), **options}
        self.memory = build_memory(self.registered, settings, addressing, addressing_options)
        self.config = self.memory.config
        self.interface_size = self.memory.interface_size
        self.read_size = self.memory.read_size
        self.rerunnable = self.memory.rerunnable  # type: ignore[misc]

    def sized_options(self, memory_size: int, memory_dim: int) -> dict[str, Any]:
        """The registered memory's options for this size: ``slots`` and ``width``."""
        return {"slots": memory_size, "width": memory_dim}
