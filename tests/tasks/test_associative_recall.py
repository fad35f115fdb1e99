"""The associative-recall task against its definition (Graves et al. 2014, §4.3)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.associative_recall import AssociativeRecallTask
from tests.tasks.sequence_helpers import perfect_logits, reference_bce, run_task_cli


def make(**options) -> AssociativeRecallTask:
    return AssociativeRecallTask(AssociativeRecallTask.Config(**options))


def parse(x: torch.Tensor, width: int, k: int) -> tuple[list[list[list[float]]], list]:
    """Walk one sequence's inputs ``(T, width + 2)``: its items and its query, each a
    list of ``k`` vectors, checking the delimiters on the way."""
    items, t = [], 0
    while x[t, width] == 1:  # an item delimiter, then k vectors
        assert x[t, width + 1] == 0 and torch.all(x[t, :width] == 0)
        body = x[t + 1 : t + 1 + k]
        assert torch.all(body[:, width:] == 0)
        items.append(body[:, :width].tolist())
        t += k + 1
    assert x[t, width + 1] == 1 and x[t, width] == 0  # the query delimiter
    query = x[t + 1 : t + 1 + k]
    assert torch.all(query[:, width:] == 0)
    assert x[t + k + 1, width + 1] == 1  # and the closing one
    assert torch.all(x[t + k + 2 :] == 0) and torch.all(x[t + k + 1, : width + 1] == 0)
    return items, query[:, :width].tolist()


def check_definition(task: AssociativeRecallTask, batch) -> list[tuple[int, int]]:
    """Check every sequence of ``batch``; return their (number of items, query index)."""
    w, k = task.config.width, task.config.item_length
    T, B, _ = batch.inputs.shape
    found = []
    for b in range(B):
        items, query = parse(batch.inputs[:, b], w, k)
        n = len(items)
        flat = [tuple(v for vec in item for v in vec) for item in items]
        assert len(set(flat)) == n  # all different
        assert all(v in (0.0, 1.0) for item in flat for v in item)
        (j,) = [i for i, item in enumerate(items) if item == query]
        assert j < n - 1  # never the last item
        start = n * (k + 1) + k + 2  # after the closing query delimiter
        scored = [t for t in range(T) if batch.mask[t, b] == 1]
        assert scored == list(range(start, start + k))
        assert batch.targets[start : start + k, b].tolist() == items[j + 1]
        others = torch.ones(T, dtype=torch.bool)
        others[start : start + k] = False
        assert torch.all(batch.targets[others, b] == 0)
        found.append((n, j))
    assert max(n for n, _ in found) * (k + 1) + 2 * k + 2 == T
    return found


def test_every_target_is_the_item_that_followed_the_query():
    task = make(width=3, item_length=2, min_items=2, max_items=6)
    batch = task.sample(60, 2, 6, torch.Generator().manual_seed(1))
    assert task.input_size == 5 and task.output_size == 3
    found = check_definition(task, batch)
    assert {n for n, _ in found} == set(range(2, 7))


def test_query_is_uniform_over_all_but_the_last_item():
    task = make(width=6, item_length=3, min_items=5, max_items=5)
    batch = task.sample(2000, 5, 5, torch.Generator().manual_seed(2))
    # the query's first vector sits right after the query delimiter
    query = batch.inputs[5 * 4 + 1]  # (B, w + 2)
    items = batch.inputs[torch.arange(5) * 4 + 1]  # first vectors of the items (5, B, w + 2)
    index = (items == query).all(-1).float().argmax(0)
    counts = Counter(index.tolist())
    assert set(counts) == {0, 1, 2, 3}
    assert min(counts.values()) > 400 and max(counts.values()) < 600


def test_items_are_distinct_even_when_few_exist():
    task = make(width=1, item_length=2, min_items=4, max_items=4)  # all 4 possible items
    batch = task.sample(20, 4, 4, torch.Generator().manual_seed(3))
    check_definition(task, batch)


def test_eval_split_is_finite_fixed_and_may_hold_more_items():
    task = make(width=4, item_length=2, max_items=3, eval_min_items=5, eval_max_items=8,
                eval_size=35)  # fmt: skip
    first = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [16, 16, 3]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    assert all(5 <= n <= 8 for batch in first for n, _ in check_definition(task, batch))


def test_train_stream_is_endless_seeded_and_follows_the_curriculum():
    task = make(width=4, item_length=1, min_items=2, max_items=10, curriculum_steps=8)
    a = list(itertools.islice(task.batches("train", 32, torch.Generator().manual_seed(2)), 12))
    b = list(itertools.islice(task.batches("train", 32, torch.Generator().manual_seed(2)), 12))
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))
    for i, batch in enumerate(a):
        most = max(n for n, _ in check_definition(task, batch))
        assert most <= (2 + 8 * i // 8 if i < 8 else 10)
        if i == 0:
            assert most == 2
        if i >= 8:
            assert most >= 8


def test_metrics_count_wrong_bits_of_the_answer_item():
    task = make(width=3, item_length=2, min_items=3, max_items=3)
    batch = task.sample(4, 3, 3, torch.Generator().manual_seed(0))
    perfect = perfect_logits(batch)
    assert task.metrics(perfect, batch) == {"bit_errors": 0.0, "item_accuracy": 1.0}
    wrong = perfect.clone()
    answer = 3 * 3 + 2 + 2
    wrong[answer, 0, :3] *= -1  # three wrong bits in sequence 0's answer
    wrong[answer + 1, 2, 1] *= -1  # one in sequence 2's
    wrong[~batch.mask.bool()] *= -1  # unscored steps do not count
    assert task.metrics(wrong, batch) == {"bit_errors": 1.0, "item_accuracy": 0.5}


def test_loss_is_masked_binary_cross_entropy():
    task = make(width=2, item_length=2, max_items=4)
    batch = task.sample(3, 2, 4, torch.Generator().manual_seed(4))
    logits = torch.randn(batch.targets.shape, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(task.loss(logits, batch).double(), reference_bce(logits, batch))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_items": 5, "max_items": 3}, "min_items \\(5\\) exceeds max_items \\(3\\)"),
        ({"eval_min_items": 9}, "eval_min_items \\(9\\) exceeds eval_max_items \\(6\\)"),
        ({"min_items": 1}, "greater than or equal to 2"),
        ({"width": 1, "item_length": 1, "max_items": 3}, "allow only 2 different items"),
        ({"width": 1, "item_length": 2, "max_items": 4, "eval_max_items": 5}, "fewer than the 5"),
        ({"item_length": 0}, "greater than or equal to 1"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(AssociativeRecallTask.Config, options, "task", "associative-recall")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    options = {"width": 3, "item_length": 2, "max_items": 3, "eval_size": 4}
    summary = run_task_cli("associative-recall", memory, tmp_path / "run", options)
    assert summary["step"] == 2 and 0 <= summary["eval"]["item_accuracy"] <= 1
