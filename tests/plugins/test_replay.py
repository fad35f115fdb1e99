"""Replay: the reservoir is a uniform sample of the stream (chi-square, fixed seed)
and never holds more than its capacity."""

from __future__ import annotations

import torch
from scipy.stats import chisquare

from nma import Batch
from nma_plugins.regularizers.replay import ReplayRegularizer
from nma_plugins.regularizers.reservoir import reservoir_slots


def reservoir_contents(items: int, capacity: int, generator: torch.Generator) -> list[int]:
    held = [-1] * capacity
    for item, slot in enumerate(reservoir_slots(0, items, capacity, generator)):
        if slot is not None:
            held[slot] = item
    return held


def test_every_item_is_kept_with_equal_probability():
    items, capacity, trials = 100, 10, 600
    generator = torch.Generator().manual_seed(1234)
    counts = [0] * items
    for _ in range(trials):
        for item in reservoir_contents(items, capacity, generator):
            counts[item] += 1
    expected = trials * capacity / items  # 60 per item
    assert sum(counts) == trials * capacity
    _, p_value = chisquare(counts, [expected] * items)
    assert p_value > 0.01, (p_value, counts)
    # early and late items are not favoured: first half vs second half
    assert abs(sum(counts[:50]) - sum(counts[50:])) < 0.1 * sum(counts)


def test_a_skewed_reservoir_fails_the_same_test():
    """The test has power: keeping the latest items instead is rejected."""
    items, capacity, trials = 100, 10, 600
    counts = [0] * items
    for _ in range(trials):
        for item in range(items - capacity, items):
            counts[item] += 1
    _, p_value = chisquare(counts, [trials * capacity / items] * items)
    assert p_value < 1e-6


def batch_of(ids: list[int], steps: int = 3) -> Batch:
    """Sequences whose every input entry is their id."""
    inputs = torch.tensor(ids, dtype=torch.float32).view(1, -1, 1).expand(steps, -1, 2)
    return Batch(inputs.clone(), inputs[..., :1].clone(), torch.ones(steps, len(ids)))


def test_buffer_is_bounded_and_augments_batches():
    replay = ReplayRegularizer(ReplayRegularizer.Config(capacity=8, replay_size=5, seed=3))
    first = replay.augment(batch_of([0, 1, 2, 3]))
    assert first.inputs.shape[1] == 4  # empty buffer: nothing to replay yet
    for start in range(4, 100, 4):
        out = replay.augment(batch_of(list(range(start, start + 4)), steps=2 + start % 3))
        assert out.inputs.shape[1] == 9  # 4 new + 5 replayed
        assert replay.size <= 8
        replayed = out.inputs[0, 4:, 0]
        assert torch.all(replayed < start)  # drawn before the new batch was offered
        assert torch.all(out.mask[:, 4:].sum(0) >= 2)  # padding is unscored, the rest kept
    assert replay.size == 8 and replay.seen == 100
    held = replay.buffer.inputs[0, :, 0]
    assert len(set(held.tolist())) == 8
    again = ReplayRegularizer(ReplayRegularizer.Config(capacity=8, replay_size=5, seed=3))
    again.load_state_dict({k: v.clone() for k, v in replay.state_dict().items()})
    a = replay.augment(batch_of([100, 101]))
    b = again.augment(batch_of([100, 101]))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
