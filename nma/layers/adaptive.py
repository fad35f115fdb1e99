"""``AdaptiveMemory``: a memory whose number of slots grows or shrinks with use.

Works with any registered memory that reports slot usage (``slot_usage``, e.g.
``dnc``, ``sdnc``, ``lrua``, ``kv``) and whose parameters and interface do not depend
on its number of slots. While a sequence runs it records the fill,

    fill = max_t  mean_{b,i} [u_t(b, i) > threshold]          u_t: the memory's usage

the largest share of slots in use at any step. When the next sequence starts (at
:meth:`AdaptiveMemory.initial_state`, in training mode), the slot count doubles if
``fill > grow_above`` and halves if ``fill < shrink_below``, within ``[min_slots,
max_slots]``. The memory is rebuilt through the registry with the new ``slots``
option and keeps its parameter objects, so an optimiser built earlier still updates
them. Resizing happens only between sequences, never inside one; in evaluation mode
the size stays as it is.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nma.build import build_memory
from nma.memory import Memory
from nma.options import Options
from nma.registry import get_registry
from nma.state import State
from nma.wrapped_memory import WrappedMemory


class AdaptiveMemory(WrappedMemory):
    """A memory that is rebuilt with more or fewer slots as its usage demands.

    It is an :class:`nma.Memory` with the wrapped memory's interface and reads.

    Args:
        memory: a registered memory's name, or a built memory of a registered class
            (then its options are those of its ``config``).
        memory_options: the memory's options besides ``slots`` (with a name).
        min_slots: the fewest slots; also the starting size unless ``slots`` is given.
        max_slots: the most slots.
        slots: the starting size; ``min_slots`` if ``None``.
        grow_above: double the slots after a sequence whose fill exceeded this.
        shrink_below: halve them after a sequence whose fill stayed below this.
        threshold: a slot is in use when its usage exceeds this.
        addressing: its addressing scheme, with a name.
        addressing_options: that scheme's options.

    Raises:
        ValueError: a memory without usage or without a ``slots`` option, limits out
            of order, or parameters or interface that change with the slot count.
    """

    def __init__(
        self,
        memory: str | Memory = "dnc",
        memory_options: dict[str, Any] | None = None,
        min_slots: int = 16,
        max_slots: int = 1024,
        slots: int | None = None,
        grow_above: float = 0.9,
        shrink_below: float = 0.25,
        threshold: float = 0.01,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(Options())
        if isinstance(memory, Memory):
            memory_options = memory.config.model_dump()
            memory = _registered_name(memory)
        if not 1 <= min_slots <= max_slots or not 0 <= shrink_below < grow_above <= 1:
            raise ValueError("need 1 <= min_slots <= max_slots and shrink_below < grow_above")
        self.name = memory
        self.options = {k: v for k, v in (memory_options or {}).items() if k != "slots"}
        self.addressing_spec = (addressing, addressing_options)
        self.min_slots, self.max_slots = min_slots, max_slots
        self.grow_above, self.shrink_below, self.threshold = grow_above, shrink_below, threshold
        if "slots" not in get_registry().get("memory", memory).Config.model_fields:
            raise ValueError(f"memory {memory!r} has no 'slots' option to adapt")
        self.slots = slots if slots is not None else min_slots
        self.memory = self._build(self.slots)
        self._check_resizable()
        self.interface_size = self.memory.interface_size
        self.read_size = self.memory.read_size
        self.fill: Tensor | None = None
        """The largest share of slots in use at any step of the current sequence."""

    def _build(self, slots: int) -> Memory:
        addressing, addressing_options = self.addressing_spec
        options = {**self.options, "slots": slots}
        return build_memory(self.name, options, addressing, addressing_options)

    def _check_resizable(self) -> None:
        other = self._build(self.max_slots if self.slots != self.max_slots else self.min_slots)
        probe = self.memory.initial_state(1, torch.device("cpu"), torch.float32)
        shapes = {k: v.shape for k, v in self.memory.state_dict().items()}
        if shapes != {k: v.shape for k, v in other.state_dict().items()} or (
            other.interface_size,
            other.read_size,
        ) != (self.memory.interface_size, self.memory.read_size):
            raise ValueError(f"memory {self.name!r} changes its parameters with its slot count")
        if self.memory.slot_usage(probe) is None:
            raise ValueError(f"memory {self.name!r} reports no slot usage to adapt by")

    def resize(self, slots: int) -> None:
        """Rebuild the memory with ``slots`` slots, keeping its parameter objects."""
        if slots == self.slots:
            return
        tensors = [*self.memory.parameters(), *self.memory.buffers()]
        new = self._build(slots).to(tensors[0].device if tensors else torch.device("cpu"))
        for name, param in self.memory.named_parameters():
            owner_name, _, leaf = name.rpartition(".")
            setattr(new.get_submodule(owner_name), leaf, param)
        for name, buffer in self.memory.named_buffers():
            owner_name, _, leaf = name.rpartition(".")
            new.get_submodule(owner_name).get_buffer(leaf).copy_(buffer)
        self.memory = new
        self.slots = slots

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> State:
        """Resize after the sequence just finished (in training mode), then start anew."""
        if self.training and self.fill is not None:
            fill = float(self.fill)  # one host read per sequence
            if fill > self.grow_above:
                self.resize(min(self.max_slots, self.slots * 2))
            elif fill < self.shrink_below:
                self.resize(max(self.min_slots, self.slots // 2))
        self.fill = None
        return self.memory.initial_state(batch_size, device, dtype)

    def forward(self, interface: Tensor, state: State) -> tuple[Tensor, State]:
        """The wrapped memory's step; records the fill."""
        reads, state = self.memory(interface, state)
        usage = self.memory.slot_usage(state)
        fill = (usage.detach() > self.threshold).to(usage.dtype).mean()
        self.fill = fill if self.fill is None else torch.maximum(self.fill, fill)
        return reads, state


def _registered_name(memory: nn.Module) -> str:
    registry = get_registry()
    for name in registry.names("memory"):
        if registry.components["memory"][name].cls is type(memory):
            return name
    raise ValueError(f"{type(memory).__name__} is not a registered memory")
