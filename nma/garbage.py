"""Memory management: garbage collection and compaction of memory slots.

Memories with a notion of slot usage (the DNC's usage vector, LRUA's usage
weights, ...) implement three methods of :class:`nma.Memory`: ``slot_usage``,
``clear_slots`` and ``reorder_slots``. :func:`collect_garbage` uses them to free
the slots whose usage fell below a threshold and to move the live slots, in their
original order, to the front of the memory. Reordering permutes every per-slot
tensor alike, so it never changes what the memory reads; freeing only removes
slots that carried (next to) no usage.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nma.memory import Memory
from nma.state import State


def collect_garbage(memory: Memory, state: State, threshold: float) -> tuple[State, Tensor]:
    """Free the slots with usage below ``threshold`` and compact the live ones.

    Args:
        memory: a memory whose ``slot_usage`` is not ``None``.
        state: its current state.
        threshold: slots with usage strictly below it are freed.

    Returns:
        ``(state, live)``: the new state, with the live slots first (in their
        previous order) and the freed ones after them, and ``live`` ``(B,)``, the
        number of live slots of each batch element.

    Raises:
        TypeError: if the memory has no notion of usage.
    """
    usage = memory.slot_usage(state)
    if usage is None:
        raise TypeError(f"{type(memory).__name__} has no slot usage to collect garbage by")
    dead = usage < threshold  # (B, N)
    state = memory.clear_slots(state, dead)
    order = compaction_order(dead)
    return memory.reorder_slots(state, order), (~dead).sum(dim=-1)


def compaction_order(dead: Tensor) -> Tensor:
    """The permutation putting live slots first: ``(B, N)`` bool → ``(B, N)`` indices.

    Live slots keep their relative order, and so do dead ones (a stable sort).
    """
    return torch.sort(dead.to(torch.int8), dim=-1, stable=True).indices
