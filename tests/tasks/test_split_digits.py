"""split-digits: disjoint classes per experience, task and class scenarios."""

from __future__ import annotations

import pytest
import torch

from nma import UsageError
from nma.config import validate_options
from nma_tasks.split_digits import SplitDigitsTask


def make(**options) -> SplitDigitsTask:
    return SplitDigitsTask(SplitDigitsTask.Config(**options))


@pytest.mark.parametrize("count", [2, 3, 5])
def test_classes_are_split_into_disjoint_groups(count):
    task = make(num_experiences=count)
    groups = task.groups
    assert sorted(c for g in groups for c in g) == list(range(10))
    assert max(map(len, groups)) - min(map(len, groups)) <= 1
    for e in range(count):
        for split in ("train", "eval"):
            labels = task.data(split, e).labels
            assert set(labels.tolist()) == set(groups[e])
    shuffled = make(num_experiences=count, shuffle_classes=True, seed=1).groups
    assert sorted(c for g in shuffled for c in g) == list(range(10))


def test_task_scenario_answers_among_the_experience_classes():
    task = make(num_experiences=5, scenario="task")
    batch = next(task.batches("train", 16, torch.Generator().manual_seed(0), experience=1))
    answers = batch.targets[8]
    assert torch.all((answers >= 0).sum(-1) == 2)  # classes 2 and 3 only
    assert torch.all(answers[:, [2, 3]] >= 0) and torch.all(answers[:, :2] == -1)
    # a logit for a class outside the experience is ignored
    outputs = batch.targets.clamp_min(0) * 5
    outputs[8, :, 9] = 100.0
    assert task.metrics(outputs, batch)["accuracy"] == 1.0
    assert task.loss(outputs, batch) < 0.01


def test_class_scenario_answers_among_all_classes():
    task = make(num_experiences=5, scenario="class")
    batch = next(task.batches("eval", 16, torch.Generator(), experience=4))
    assert torch.all(batch.targets[8] >= 0)
    outputs = batch.targets.clamp_min(0) * 5
    outputs[8, :, 0] = 100.0  # class 0 is a wrong answer now
    assert task.metrics(outputs, batch)["accuracy"] == 0.0


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError, match="less than or equal to 10"):
        validate_options(SplitDigitsTask.Config, {"num_experiences": 11}, "task", "split-digits")
    with pytest.raises(ValueError, match="out of range"):
        make(num_experiences=2).data("train", 2)
