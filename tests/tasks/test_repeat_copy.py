"""The repeat-copy task against its definition (Graves et al. 2014, §4.2)."""

from __future__ import annotations

import itertools

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.repeat_copy import RepeatCopyTask
from tests.tasks.sequence_helpers import perfect_logits, reference_bce, run_task_cli


def make(**options) -> RepeatCopyTask:
    return RepeatCopyTask(RepeatCopyTask.Config(**options))


def read_sequence(x: torch.Tensor, width: int, max_repeats: int) -> tuple[int, int]:
    """(length, repeats) of one sequence, read off its inputs ``(T, width + 2)``."""
    (length,) = [t for t in range(x.shape[0]) if x[t, width] == 1]
    repeats = round(float(x[length, width + 1]) * max_repeats)
    return length, repeats


def all_pairs(batch, width: int, max_repeats: int) -> list[tuple[int, int]]:
    """(length, repeats) of every sequence of ``batch``, read off the delimiter step."""
    lengths = batch.inputs[..., width].argmax(dim=0)
    counts = batch.inputs[lengths, torch.arange(len(lengths)), width + 1] * max_repeats
    return list(zip(lengths.tolist(), counts.round().long().tolist(), strict=True))


def check_definition(task: RepeatCopyTask, batch) -> list[tuple[int, int]]:
    """Check every sequence of ``batch`` step by step; return their (length, repeats)."""
    w, top = task.config.width, task.config.max_repeats
    T, B, _ = batch.inputs.shape
    assert batch.targets.shape == (T, B, w + 1) and batch.mask.shape == (T, B)
    found = []
    for b in range(B):
        x, y, m = batch.inputs[:, b], batch.targets[:, b], batch.mask[:, b]
        length, repeats = read_sequence(x, w, top)
        assert float(x[length, w + 1]) == pytest.approx(repeats / top)
        found.append((length, repeats))
        for t in range(T):
            if t < length:
                assert set(x[t, :w].tolist()) <= {0.0, 1.0}
                assert x[t, w] == 0 and x[t, w + 1] == 0
            elif t > length:
                assert torch.all(x[t] == 0)
            end = length + repeats * length + 1
            if length < t < end:  # copy number (t - length - 1) // length
                assert m[t] == 1
                assert torch.equal(y[t, :w], x[(t - length - 1) % length, :w])
                assert y[t, w] == 0
            elif t == end:
                assert m[t] == 1 and y[t, w] == 1 and torch.all(y[t, :w] == 0)
            else:
                assert m[t] == 0 and torch.all(y[t] == 0)
    assert max(n * (r + 1) + 2 for n, r in found) == T
    return found


def test_every_sequence_matches_the_definition():
    task = make(width=4, min_length=1, max_length=5, min_repeats=1, max_repeats=4)
    batch = task.sample(40, (1, 5), (1, 4), torch.Generator().manual_seed(1))
    assert task.input_size == 6 and task.output_size == 5
    found = check_definition(task, batch)
    assert {n for n, _ in found} == set(range(1, 6))
    assert {r for _, r in found} == set(range(1, 5))


def test_lengths_and_counts_cover_their_ranges_uniformly():
    task = make(min_length=2, max_length=4, min_repeats=3, max_repeats=5)
    batch = task.sample(3000, (2, 4), (3, 5), torch.Generator().manual_seed(0))
    pairs = all_pairs(batch, 8, 5)
    for values, lo in (([n for n, _ in pairs], 2), ([r for _, r in pairs], 3)):
        counts = torch.bincount(torch.tensor(values) - lo, minlength=3)
        assert len(counts) == 3 and counts.min() > 900 and counts.max() < 1100


def test_eval_split_is_finite_fixed_and_may_exceed_the_training_ranges():
    task = make(
        width=3, max_length=3, max_repeats=2, eval_min_length=4, eval_max_length=6,
        eval_min_repeats=3, eval_max_repeats=5, eval_size=40,
    )  # fmt: skip
    first = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [16, 16, 8]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    for batch in first:
        for n, r in check_definition(task, batch):
            assert 4 <= n <= 6 and 3 <= r <= 5  # counts above max_repeats read as > 1


def test_train_stream_is_endless_and_seeded():
    task = make(width=3, max_length=4, max_repeats=3)
    a = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 30))
    b = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 30))
    assert len(a) == 30
    assert all(torch.equal(x.targets, y.targets) for x, y in zip(a, b, strict=True))


def test_curriculum_grows_length_and_count_linearly():
    task = make(
        width=2, min_length=2, max_length=12, min_repeats=1, max_repeats=6, curriculum_steps=10
    )
    stream = task.batches("train", 48, torch.Generator().manual_seed(3))
    for i, batch in enumerate(itertools.islice(stream, 14)):
        found = all_pairs(batch, 2, 6)
        length_cap = 2 + 10 * i // 10 if i < 10 else 12
        repeat_cap = 1 + 5 * i // 10 if i < 10 else 6
        assert max(n for n, _ in found) <= length_cap
        assert max(r for _, r in found) <= repeat_cap
        if i == 0:
            assert found == [(2, 1)] * 48
        if i >= 10:  # the full ranges
            assert max(n for n, _ in found) >= 9 and max(r for _, r in found) >= 5
        if i in (0, 5, 13):
            assert check_definition(task, batch) == found


def test_metrics_count_wrong_bits_including_the_end_marker():
    task = make(width=3, max_repeats=2)
    batch = task.sample(2, (2, 2), (2, 2), torch.Generator().manual_seed(0))
    perfect = perfect_logits(batch)
    assert task.metrics(perfect, batch) == {"bit_errors": 0.0, "sequence_accuracy": 1.0}
    wrong = perfect.clone()
    end = 2 + 2 * 2 + 1
    wrong[end, 0, 3] *= -1  # a missed end marker in sequence 0
    wrong[3, 1, :2] *= -1  # two wrong bits in sequence 1's first copy
    wrong[~batch.mask.bool()] *= -1  # unscored steps do not count
    assert task.metrics(wrong, batch) == {"bit_errors": 1.5, "sequence_accuracy": 0.0}
    early = perfect.clone()
    early[end - 1, 0, 3] = 5  # an end marker one step early
    assert task.metrics(early, batch) == {"bit_errors": 0.5, "sequence_accuracy": 0.5}


def test_loss_is_masked_binary_cross_entropy():
    task = make(width=2, max_length=3, max_repeats=3)
    batch = task.sample(3, (1, 3), (1, 3), torch.Generator().manual_seed(4))
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(0))
    expected = reference_bce(logits, batch)
    assert torch.allclose(task.loss(logits, batch).double(), expected, atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_repeats": 4, "max_repeats": 2}, "min_repeats \\(4\\) exceeds max_repeats \\(2\\)"),
        ({"min_length": 5, "max_length": 2}, "min_length \\(5\\) exceeds max_length"),
        ({"eval_min_repeats": 12}, "eval_min_repeats \\(12\\) exceeds eval_max_repeats \\(10\\)"),
        ({"eval_min_length": 9, "eval_max_length": 7}, "eval_min_length \\(9\\) exceeds"),
        ({"max_repeats": 0}, "greater than or equal to 1"),
        ({"curriculum_steps": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(RepeatCopyTask.Config, options, "task", "repeat-copy")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    options = {"width": 3, "max_length": 3, "max_repeats": 2, "eval_size": 4}
    summary = run_task_cli("repeat-copy", memory, tmp_path / "run", options)
    assert summary["step"] == 2 and summary["eval"]["bit_errors"] >= 0
