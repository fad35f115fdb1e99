"""The priority-sort task against its definition (Graves et al. 2014, §4.5)."""

from __future__ import annotations

import itertools

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.priority_sort import PrioritySortTask
from tests.tasks.sequence_helpers import perfect_logits, reference_bce, run_task_cli


def make(**options) -> PrioritySortTask:
    return PrioritySortTask(PrioritySortTask.Config(**options))


def check_definition(task: PrioritySortTask, batch) -> list[int]:
    """Check every sequence of ``batch`` against a sort written here; return the
    number of inputs of each."""
    w, outputs = task.config.width, task.config.num_outputs or None
    T, B, _ = batch.inputs.shape
    found = []
    for b in range(B):
        x, y, m = batch.inputs[:, b], batch.targets[:, b], batch.mask[:, b]
        (n,) = [t for t in range(T) if x[t, w + 1] == 1]
        count = n if outputs is None else outputs
        entries = []
        for t in range(n):
            vector, priority = x[t, :w].tolist(), float(x[t, w])
            assert set(vector) <= {0.0, 1.0} and -1 <= priority <= 1
            entries.append((priority, t, vector))
        assert torch.all(x[n + 1 :] == 0) and torch.all(x[n, : w + 1] == 0)
        ranked = sorted(entries, key=lambda e: (-e[0], e[1]))  # highest first, ties in order
        for t in range(T):
            j = t - n - 1
            if 0 <= j < count:
                assert m[t] == 1 and y[t].tolist() == ranked[j][2]
            else:
                assert m[t] == 0 and torch.all(y[t] == 0)
        found.append(n)
    assert max(n + (n if outputs is None else outputs) for n in found) + 1 == T
    return found


def test_the_paper_setting_matches_the_definition():
    task = make()  # 20 inputs of 8 bits, the 16 of highest priority out
    batch = task.sample(8, 20, 20, torch.Generator().manual_seed(1))
    assert task.input_size == 10 and task.output_size == 8
    assert check_definition(task, batch) == [20] * 8
    assert batch.inputs.shape[0] == 20 + 16 + 1


def test_variable_inputs_and_full_sort_match_the_definition():
    task = make(width=3, min_inputs=2, max_inputs=7, num_outputs=2)
    batch = task.sample(40, 2, 7, torch.Generator().manual_seed(2))
    assert set(check_definition(task, batch)) == set(range(2, 8))
    full = make(width=3, min_inputs=1, max_inputs=6, num_outputs=0)
    batch = full.sample(40, 1, 6, torch.Generator().manual_seed(3))
    assert set(check_definition(full, batch)) == set(range(1, 7))


def test_priorities_are_uniform_on_minus_one_to_one():
    task = make(width=1, min_inputs=20, max_inputs=20, num_outputs=1)
    batch = task.sample(500, 20, 20, torch.Generator().manual_seed(4))
    priorities = batch.inputs[:20, :, 1].flatten()
    assert priorities.min() >= -1 and priorities.max() <= 1
    histogram = torch.histc(priorities, bins=4, min=-1, max=1)
    assert histogram.min() > 2300 and histogram.max() < 2700  # 2500 expected per bin


def test_eval_split_is_finite_fixed_and_may_hold_more_inputs():
    task = make(width=2, min_inputs=4, max_inputs=4, num_outputs=3, eval_min_inputs=6,
                eval_max_inputs=9, eval_size=20)  # fmt: skip
    first = list(task.batches("eval", 8, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 8, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [8, 8, 4]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    assert all(6 <= n <= 9 for batch in first for n in check_definition(task, batch))


def test_train_stream_is_endless_seeded_and_follows_the_curriculum():
    task = make(width=2, min_inputs=4, max_inputs=16, num_outputs=4, curriculum_steps=6)
    a = list(itertools.islice(task.batches("train", 32, torch.Generator().manual_seed(6)), 9))
    b = list(itertools.islice(task.batches("train", 32, torch.Generator().manual_seed(6)), 9))
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))
    for i, batch in enumerate(a):
        most = max(check_definition(task, batch))
        assert most <= (4 + 12 * i // 6 if i < 6 else 16)
        if i == 0:
            assert most == 4
        if i >= 6:
            assert most >= 13


def test_metrics_count_wrong_bits_per_sequence():
    task = make(width=3, min_inputs=3, max_inputs=3, num_outputs=2)
    batch = task.sample(2, 3, 3, torch.Generator().manual_seed(0))
    perfect = perfect_logits(batch)
    assert task.metrics(perfect, batch) == {"bit_errors": 0.0, "sequence_accuracy": 1.0}
    wrong = perfect.clone()
    wrong[4, 1, :] *= -1  # three wrong bits in sequence 1's first output
    wrong[5, 1, 0] *= -1  # and one in its second
    wrong[~batch.mask.bool()] *= -1  # unscored steps do not count
    assert task.metrics(wrong, batch) == {"bit_errors": 2.0, "sequence_accuracy": 0.5}


def test_loss_is_masked_binary_cross_entropy():
    task = make(width=2, min_inputs=2, max_inputs=4, num_outputs=2)
    batch = task.sample(3, 2, 4, torch.Generator().manual_seed(4))
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(task.loss(logits, batch).double(), reference_bce(logits, batch))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_inputs": 21}, "min_inputs \\(21\\) exceeds max_inputs \\(20\\)"),
        ({"num_outputs": 21, "max_inputs": 30}, "num_outputs \\(21\\) exceeds min_inputs \\(20\\)"),
        ({"eval_min_inputs": 10}, "num_outputs \\(16\\) exceeds eval_min_inputs \\(10\\)"),
        ({"eval_min_inputs": 25}, "eval_min_inputs \\(25\\) exceeds eval_max_inputs \\(20\\)"),
        ({"num_outputs": -1}, "greater than or equal to 0"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(PrioritySortTask.Config, options, "task", "priority-sort")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    options = {"width": 3, "min_inputs": 4, "max_inputs": 5, "num_outputs": 3, "eval_size": 4}
    summary = run_task_cli("priority-sort", memory, tmp_path / "run", options)
    assert summary["step"] == 2 and summary["eval"]["bit_errors"] >= 0
