"""SAM's last-access stamps and least recently accessed slot, against plain-Python references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from nma_plugins.memories.sam_usage import (
    NEVER,
    PADDING,
    block_layout,
    initial_times,
    least_recent,
    record_access,
)

CPU = torch.device("cpu")


# --- independent reference -------------------------------------------------------------------


def ref_least_recent(stamps: list[int]) -> int:
    """argmin over slots of the last-access step, the lowest index among ties."""
    best = 0
    for i, s in enumerate(stamps):
        if s < stamps[best]:
            best = i
    return best


def ref_record(stamps: list[int], slots: list[int], weights: list[float], step: int, delta: float):
    """Section 3.2: slot i is accessed when the sum of its read and write weights > delta."""
    total: dict[int, float] = {}
    for s, w in zip(slots, weights, strict=True):
        total[s] = total.get(s, 0.0) + w
    return [step if total.get(i, 0.0) > delta else stamp for i, stamp in enumerate(stamps)]


def block_minima(times: torch.Tensor, blocks: int) -> torch.Tensor:
    return times.view(times.shape[0], blocks, -1).amin(dim=2)


# --- tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slots", "size", "blocks"),
    [(1, 1, 1), (2, 2, 1), (4, 2, 2), (5, 3, 2), (10, 4, 3), (16, 4, 4), (10**6, 1000, 1000)],
)
def test_block_layout(slots: int, size: int, blocks: int) -> None:
    assert block_layout(slots) == (size, blocks)
    assert size == math.ceil(math.sqrt(slots)) and size * blocks >= slots


def test_initial_times() -> None:
    times, block_min = initial_times(2, 10, CPU)
    assert times.shape == (2, 12) and times.dtype == torch.int64
    assert block_min.shape == (2, 3) and block_min.dtype == torch.int64
    assert bool((times[:, :10] == NEVER).all()) and bool((times[:, 10:] == PADDING).all())
    assert bool((block_min == NEVER).all())
    # Nothing accessed yet: slots are taken in order, starting at 0.
    assert least_recent(times, block_min).tolist() == [0, 0]


def test_least_recent_by_hand() -> None:
    # N = 5 (S = 3, G = 2): stamps 4, 2, 7, 2, 9 -> the minimum 2 is at slots 1 and 3,
    # and the lowest index wins: slot 1.
    times, block_min = initial_times(1, 5, CPU)
    times[0, :5] = torch.tensor([4, 2, 7, 2, 9])
    block_min.copy_(block_minima(times, 2))
    assert least_recent(times, block_min).tolist() == [1]
    # Make slot 1 recent: the next least recent is slot 3, in the second block.
    times[0, 1] = 10
    block_min.copy_(block_minima(times, 2))
    assert least_recent(times, block_min).tolist() == [3]


@pytest.mark.parametrize("slots", [1, 7, 30, 100])
def test_least_recent_matches_reference(slots: int) -> None:
    rng = np.random.default_rng(slots)
    size, blocks = block_layout(slots)
    times, block_min = initial_times(4, slots, CPU)
    stamps = rng.integers(-1, 4, size=(4, slots))  # many ties
    times[:, :slots] = torch.from_numpy(stamps)
    block_min.copy_(block_minima(times, blocks))
    got = least_recent(times, block_min).tolist()
    assert got == [ref_least_recent(list(row)) for row in stamps]


def test_record_access_by_hand() -> None:
    # delta = 0.1. Slot 2 is touched twice with 0.06 + 0.06 = 0.12 > 0.1: accessed.
    # Slot 0 with 0.1 (not more than delta): not accessed. Slot 4 with 0.5: accessed.
    times, block_min = initial_times(1, 5, CPU)
    slots = torch.tensor([[2, 0, 2, 4]])
    weights = torch.tensor([[0.06, 0.1, 0.06, 0.5]], dtype=torch.float64)
    record_access(times, block_min, slots, weights, torch.tensor([3]), 0.1)
    assert times[0, :5].tolist() == [-1, -1, 3, -1, 3]
    assert block_min.tolist() == [[-1, -1]]
    assert least_recent(times, block_min).tolist() == [0]


def test_record_access_matches_reference_over_many_steps() -> None:
    batch, slots, entries, delta = 3, 23, 6, 0.05
    rng = np.random.default_rng(1)
    _, blocks = block_layout(slots)
    times, block_min = initial_times(batch, slots, CPU)
    ref = [[NEVER] * slots for _ in range(batch)]
    for step in range(40):
        lra = least_recent(times, block_min).tolist()
        assert lra == [ref_least_recent(row) for row in ref]
        touched = rng.integers(0, slots, size=(batch, entries))
        touched[:, 0] = lra  # like SAM: the least recently accessed slot is written
        weights = rng.uniform(0.0, 0.1, size=(batch, entries))
        record_access(
            times,
            block_min,
            torch.from_numpy(touched),
            torch.from_numpy(weights),
            torch.full((batch,), step),
            delta,
        )
        ref = [
            ref_record(ref[b], list(touched[b]), list(weights[b]), step, delta)
            for b in range(batch)
        ]
        assert times[:, :slots].tolist() == ref
        assert bool((times[:, slots:] == PADDING).all())
        torch.testing.assert_close(block_min, block_minima(times, blocks), rtol=0, atol=0)
