"""``GatedMemory``: any memory behind a learned write gate and read gate.

Wraps a memory ``f`` (``r̃_t, m̃_t = f(i_t, m_{t-1})``) so that two gates, computed
from the same controller output as its interface, decide per step and per sequence
how much of the step's write is kept and how much of its read is returned::

    g^w_t = sigmoid(a_t),   g^r_t = sigmoid(b_t)          a_t, b_t: two interface values
    m_t   = g^w_t m̃_t + (1 − g^w_t) m_{t−1}              every floating-point state tensor
    r_t   = g^r_t r̃_t

``g^w_t = 0`` leaves the memory exactly as it was (no write), ``g^w_t = 1`` is the
memory's own step; in between the state moves part of the way, like the update gate
of a GRU (Cho et al. 2014, eq. 7) applied to the whole memory state. Integer and
boolean state tensors (pointers, indices) follow the memory's own step. The read is
the memory's read of its fully written state, scaled by ``g^r_t``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import Tensor

from nma.layers.components import MemorySpec, resolve_memory
from nma.memory import Memory
from nma.options import Options
from nma.state import State


class GatedState(NamedTuple):
    """State of a :class:`GatedMemory`.

    Attributes:
        memory: the wrapped memory's state.
        gates: ``(B, 2)``: this step's write and read gates ``g^w_t, g^r_t``.
    """

    memory: State
    gates: Tensor


class GatedMemory(Memory):
    """A memory whose writes and reads pass a learned gate (see the module docstring).

    Interface: ``[a_t | b_t | the memory's own interface]``, so ``interface_size`` is
    the memory's plus 2; ``read_size`` is the memory's. It is an :class:`nma.Memory`:
    use it in :class:`~nma.layers.MemoryLayer`, :class:`~nma.layers.RecurrentMemoryLayer`
    or step it yourself.

    Args:
        memory: a registered memory's name or a built :class:`nma.Memory` whose
            ``rerunnable`` is true (a memory that updates its state in place, such as
            ``sam``, leaves no previous state to keep).
        memory_options: the memory's options when ``memory`` is a name.
        addressing: its addressing scheme, when ``memory`` is a name and takes one.
        addressing_options: that scheme's options.

    Raises:
        ValueError: for a memory that updates its state in place.
    """

    def __init__(
        self,
        memory: MemorySpec = "ntm",
        memory_options: dict[str, Any] | None = None,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(Options())
        self.memory = resolve_memory(memory, memory_options, addressing, addressing_options)
        if not self.memory.rerunnable:
            raise ValueError(
                f"GatedMemory needs a memory that keeps its previous state; "
                f"{type(self.memory).__name__} updates its state in place"
            )
        self.interface_size = self.memory.interface_size + 2
        self.read_size = self.memory.read_size

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> GatedState:
        """The memory's initial state; gates zero."""
        gates = torch.zeros(batch_size, 2, device=device, dtype=dtype)
        return GatedState(self.memory.initial_state(batch_size, device, dtype), gates)

    def forward(self, interface: Tensor, state: GatedState) -> tuple[Tensor, GatedState]:
        """One gated step: ``interface`` ``(B, interface_size)`` → reads ``(B, read_size)``."""
        gates = torch.sigmoid(interface[:, :2])  # (B, 2)
        reads, written = self.memory(interface[:, 2:], state.memory)
        kept = _interpolate(gates[:, :1], written, state.memory)
        return gates[:, 1:] * reads, GatedState(kept, gates)

    def slot_usage(self, state: GatedState) -> Tensor | None:
        """The wrapped memory's slot usage."""
        return self.memory.slot_usage(state.memory)

    def clear_slots(self, state: GatedState, mask: Tensor) -> GatedState:
        """The wrapped memory's :meth:`nma.Memory.clear_slots`."""
        return GatedState(self.memory.clear_slots(state.memory, mask), state.gates)

    def reorder_slots(self, state: GatedState, order: Tensor) -> GatedState:
        """The wrapped memory's :meth:`nma.Memory.reorder_slots`."""
        return GatedState(self.memory.reorder_slots(state.memory, order), state.gates)

    def inspect(self, state: GatedState) -> dict[str, Tensor]:
        """The wrapped memory's record, plus ``write_gate`` and ``read_gate`` ``(B,)``."""
        record = dict(self.memory.inspect(state.memory))
        record["write_gate"], record["read_gate"] = state.gates.unbind(-1)
        return record


def _interpolate(gate: Tensor, new: State, old: State) -> State:
    """``gate new + (1 − gate) old`` on every floating-point tensor; ``gate`` ``(B, 1)``."""
    if new is None:
        return None
    if isinstance(new, Tensor):
        if not new.is_floating_point():
            return new
        g = gate.reshape(gate.shape[0], *([1] * (new.dim() - 1)))
        return g * new + (1 - g) * old
    items = [_interpolate(gate, n, o) for n, o in zip(new, old, strict=True)]
    return type(new)(*items) if hasattr(new, "_fields") else tuple(items)
