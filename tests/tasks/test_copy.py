"""The copy task against its definition (Graves et al. 2014, §4.1)."""

from __future__ import annotations

import itertools

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.copy import CopyTask
from tests.tasks.sequence_helpers import run_task_cli


def make(**options) -> CopyTask:
    return CopyTask(CopyTask.Config(**options))


def lengths_of(batch) -> list[int]:
    """Each sequence's length, read off the delimiter channel."""
    return batch.inputs[..., -1].argmax(dim=0).tolist()


def test_every_sequence_matches_the_definition():
    task = make(width=5, min_length=1, max_length=7)
    batch = task.sample(32, 1, 7, torch.Generator().manual_seed(1))
    T, B, _ = batch.inputs.shape
    assert task.input_size == 6 and task.output_size == 5
    for b, length in enumerate(lengths_of(batch)):
        assert 1 <= length <= 7
        x, y, m = batch.inputs[:, b], batch.targets[:, b], batch.mask[:, b]
        assert x[length, -1] == 1 and x[:, -1].sum() == 1  # one delimiter
        assert torch.all(x[length:, :5] == 0)  # nothing after the sequence
        assert torch.all(x[:length, -1] == 0)
        for t in range(T):
            scored = length < t <= 2 * length
            assert m[t] == float(scored)
            if scored:
                assert torch.equal(y[t], x[t - length - 1, :5])  # the echo
            else:
                assert torch.all(y[t] == 0)
        assert set(x[:length, :5].unique().tolist()) <= {0.0, 1.0}
    assert 2 * max(lengths_of(batch)) + 1 == T


def test_lengths_cover_the_range_uniformly():
    task = make(min_length=2, max_length=5)
    batch = task.sample(4000, 2, 5, torch.Generator().manual_seed(0))
    counts = torch.bincount(torch.tensor(lengths_of(batch)), minlength=6)[2:]
    assert counts.min() > 900 and counts.max() < 1100


def test_eval_split_is_finite_fixed_and_uses_its_own_lengths():
    task = make(max_length=4, eval_min_length=6, eval_max_length=8, eval_size=70)
    first = list(task.batches("eval", 32, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 32, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [32, 32, 6]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    assert all(6 <= n <= 8 for b in first for n in lengths_of(b))


def test_train_stream_is_endless_and_seeded():
    task = make()
    a = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 50))
    b = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 50))
    assert len(a) == 50
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))


def test_metrics_count_wrong_bits_per_sequence():
    task = make(width=3)
    batch = task.sample(2, 2, 2, torch.Generator().manual_seed(0))
    perfect = (batch.targets * 2 - 1) * 5  # logits on the right side of 0
    assert task.metrics(perfect, batch) == {"bit_errors": 0.0, "sequence_accuracy": 1.0}
    wrong = perfect.clone()
    t = int(batch.mask[:, 0].nonzero()[0])
    wrong[t, 0, :2] *= -1  # two wrong bits in sequence 0
    wrong[~batch.mask.bool()] *= -1  # unscored steps do not count
    assert task.metrics(wrong, batch) == {"bit_errors": 1.0, "sequence_accuracy": 0.5}


def test_loss_is_masked_binary_cross_entropy():
    task = make(width=2)
    batch = task.sample(3, 1, 3, torch.Generator().manual_seed(4))
    logits = torch.randn_like(batch.targets)
    expected_terms = []
    for t, b in batch.mask.nonzero().tolist():
        for k in range(2):
            p = torch.sigmoid(logits[t, b, k])
            y = batch.targets[t, b, k]
            expected_terms.append(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)))
    expected = torch.stack(expected_terms).mean()
    assert torch.allclose(task.loss(logits, batch), expected, atol=1e-6)


def test_bad_ranges_are_usage_errors():
    with pytest.raises(UsageError, match="exceeds"):
        validate_options(CopyTask.Config, {"min_length": 4, "max_length": 2}, "task", "copy")
    with pytest.raises(UsageError, match="greater than or equal to 1"):
        validate_options(CopyTask.Config, {"width": 0}, "task", "copy")


def test_curriculum_grows_the_longest_length_linearly():
    task = make(width=2, min_length=3, max_length=23, curriculum_steps=10)
    stream = task.batches("train", 64, torch.Generator().manual_seed(7))
    for i, batch in enumerate(itertools.islice(stream, 13)):
        lengths = lengths_of(batch)
        cap = 3 + 20 * i // 10 if i < 10 else 23
        assert min(lengths) >= 3 and max(lengths) <= cap
        if i == 0:
            assert set(lengths) == {3}
        if i >= 10:
            assert max(lengths) >= 20


def test_default_has_no_curriculum():
    task = make()
    assert task.config.curriculum_steps == 0
    stream = task.batches("train", 8, torch.Generator().manual_seed(1))
    expected = task.sample(8, 1, 10, torch.Generator().manual_seed(1))
    assert torch.equal(next(stream).inputs, expected.inputs)


def test_eval_reaches_lengths_far_beyond_training():
    task = make(width=4, max_length=20, eval_max_length=120, eval_size=256)
    lengths = [n for b in task.batches("eval", 64, torch.Generator().manual_seed(0))
               for n in lengths_of(b)]  # fmt: skip
    assert len(lengths) == 256 and min(lengths) >= 1 and max(lengths) <= 120
    assert max(lengths) >= 115 and sum(n > 20 for n in lengths) > 180


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli_with_a_curriculum_and_long_eval(memory, tmp_path):
    options = {"width": 3, "max_length": 4, "curriculum_steps": 2, "eval_min_length": 100,
               "eval_max_length": 110, "eval_size": 2}  # fmt: skip
    summary = run_task_cli("copy", memory, tmp_path / "run", options)
    assert summary["step"] == 2
    assert 0 <= summary["eval"]["bit_errors"] <= 3 * 110  # scored over ~100+ steps
