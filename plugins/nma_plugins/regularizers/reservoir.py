"""Reservoir sampling (Vitter 1985, algorithm R)."""

from __future__ import annotations

import torch


def reservoir_slots(
    seen: int, count: int, capacity: int, generator: torch.Generator
) -> list[int | None]:
    """Where each of ``count`` new items goes in a reservoir of ``capacity`` slots that
    has already been offered ``seen`` items: item ``n`` (1-based, over the whole
    stream) fills slot ``n - 1`` while ``n ≤ capacity``; afterwards it draws ``j``
    uniformly from ``0..n-1`` and replaces slot ``j`` if ``j < capacity``, else is
    dropped (``None``). After any number of items, each is held with probability
    ``capacity / n``: the reservoir is a uniform sample of everything seen."""
    slots: list[int | None] = []
    for n in range(seen + 1, seen + count + 1):
        if n <= capacity:
            slots.append(n - 1)
            continue
        j = int(torch.randint(n, (1,), generator=generator))
        slots.append(j if j < capacity else None)
    return slots
