"""``WrappedMemory``: a memory that hands every call to another memory."""

from __future__ import annotations

import torch
from torch import Tensor

from nma.memory import Memory
from nma.state import State


class WrappedMemory(Memory):
    """An :class:`nma.Memory` whose steps, usage, slot operations and record are those
    of ``self.memory`` (set by the subclass). A subclass overrides only what it
    changes (e.g. :class:`~nma.layers.AdaptiveMemory` records the fill in
    :meth:`forward`).
    """

    memory: Memory

    @property
    def reads_to_controller(self) -> bool:  # type: ignore[override]
        """The wrapped memory's :attr:`nma.Memory.reads_to_controller`."""
        return self.memory.reads_to_controller

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """The wrapped memory's initial state."""
        return self.memory.initial_state(batch_size, device, dtype)

    def forward(self, interface: Tensor, state: State) -> tuple[Tensor, State]:
        """The wrapped memory's step: ``(B, interface_size)`` → ``(B, read_size)``."""
        return self.memory(interface, state)

    def slot_usage(self, state: State) -> Tensor | None:
        """The wrapped memory's slot usage ``(B, slots)``."""
        return self.memory.slot_usage(state)

    def clear_slots(self, state: State, mask: Tensor) -> State:
        """The wrapped memory's :meth:`nma.Memory.clear_slots`."""
        return self.memory.clear_slots(state, mask)

    def reorder_slots(self, state: State, order: Tensor) -> State:
        """The wrapped memory's :meth:`nma.Memory.reorder_slots`."""
        return self.memory.reorder_slots(state, order)

    def inspect(self, state: State) -> dict[str, Tensor]:
        """The wrapped memory's record of its last step."""
        return self.memory.inspect(state)
