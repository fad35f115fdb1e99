"""``DynamicMemoryLayer``: a memory layer that frees and compacts slots as it runs.

A :class:`~nma.layers.MemoryLayer` whose memory allocates slots dynamically (the
DNC's usage and free list, Graves et al. 2016, Methods "Dynamic memory allocation";
LRUA's least-used slots; ...), with garbage collection during the sequence: every
``collect_every`` steps, :func:`nma.collect_garbage` frees the slots whose usage fell
below ``threshold`` and moves the live ones, in order, to the front. Long sequences
then keep finding free slots to write, and the live slots stay contiguous.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nma.garbage import collect_garbage
from nma.layers.components import MemorySpec
from nma.layers.memory_layer import MemoryLayer
from nma.state import State


class DynamicMemoryLayer(MemoryLayer):
    """A :class:`~nma.layers.MemoryLayer` with garbage collection every few steps.

    Args:
        input_size: ``F``, the width of one step's input.
        memory: a registered memory's name or a built :class:`nma.Memory`, one with
            slot usage (``dnc``, ``sdnc``, ``lrua``, ``kv``, ...).
        collect_every: collect garbage after every ``collect_every``-th step.
        threshold: slots with usage below it are freed.
        memory_options: the memory's options when ``memory`` is a name.
        addressing: its addressing scheme, with a name.
        addressing_options: that scheme's options.
        batch_first: inputs and reads are ``(B, T, ...)``.

    Attributes:
        live: ``(B,)`` the live slots of each sequence after the last collection
            (``None`` before the first).

    Raises:
        ValueError: a memory without slot usage.
    """

    def __init__(
        self,
        input_size: int,
        memory: MemorySpec = "dnc",
        collect_every: int = 8,
        threshold: float = 1e-3,
        memory_options: dict[str, Any] | None = None,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__(
            input_size, memory, memory_options, addressing, addressing_options, batch_first
        )
        probe = self.memory.initial_state(1, torch.device("cpu"), torch.float32)
        if self.memory.slot_usage(probe) is None:
            raise ValueError(f"{type(self.memory).__name__} reports no slot usage to collect by")
        if collect_every < 1:
            raise ValueError(f"collect_every must be at least 1, not {collect_every}")
        self.collect_every = collect_every
        self.threshold = threshold
        self.live: Tensor | None = None

    def run(self, interfaces: Tensor, state: State) -> tuple[Tensor, State]:
        """Step the memory over ``(T, B, interface_size)``, collecting garbage every
        ``collect_every`` steps; returns the reads ``(T, B, read_size)`` and the state."""
        reads = []
        for step, interface in enumerate(interfaces.unbind(0), start=1):
            read, state = self.memory(interface, state)
            reads.append(read)
            if step % self.collect_every == 0:
                state, self.live = collect_garbage(self.memory, state, self.threshold)
        return torch.stack(reads), state
