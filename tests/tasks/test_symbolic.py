"""The machinery shared by the reasoning tasks: batches, curricula, exact per-bucket metrics."""

from __future__ import annotations

import zlib

import pytest
import torch
from torch import nn

from nma import Ratio, Task
from nma.seeding import EVAL_SEED, generator
from nma.task import combine_metrics
from nma.trainer import evaluate
from nma_tasks import symbolic
from nma_tasks.knowledge import KnowledgeTask
from nma_tasks.logical import LogicalTask
from nma_tasks.symbolic import Problem
from nma_tasks.temporal import TemporalTask


def test_encode_lays_problems_out_time_major():
    problems = [
        Problem(((0,), (1, 3), ()), (None, None, 2), 1, "a"),
        Problem(((2,),), (1,), 0, "b"),
    ]
    batch = symbolic.encode(problems, input_size=4)
    assert batch.inputs.shape == (3, 2, 4) and batch.targets.shape == (3, 2, 2)
    assert batch.inputs[:, 0].tolist() == [[1, 0, 0, 0], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert batch.inputs[:, 1].tolist() == [[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    assert batch.mask.tolist() == [[0, 1], [0, 0], [1, 0]]
    assert batch.targets[:, 0].tolist() == [[0, 1], [0, 1], [2, 1]]  # answer, bucket
    assert batch.targets[:, 1].tolist() == [[1, 0], [0, 0], [0, 0]]


def test_bucket_ratios_sum_and_count_each_bucket():
    problems = [Problem(((0,),), (0,), k, i) for i, k in enumerate([2, 0, 2, 2])]
    batch = symbolic.encode(problems, input_size=1)
    values = torch.tensor([1.0, 0.5, 0.0, 1.0])
    got = symbolic.bucket_ratios(values, batch, ["zero", None, "two", "three"])
    assert got == {"zero": Ratio(0.5, 1.0), "two": Ratio(2.0, 3.0), "three": Ratio(0.0, 0.0)}
    assert combine_metrics([(got, 4)]) == {"zero": 0.5, "two": pytest.approx(2 / 3)}


def test_ramp_is_linear_then_flat():
    assert [symbolic.ramp(2, 6, i, 4) for i in range(7)] == [2, 3, 4, 5, 6, 6, 6]
    assert symbolic.ramp(2, 6, 0, 0) == 6  # no curriculum


def test_held_out_partition_is_a_stable_quarter():
    keys = [("k", i) for i in range(4000)]
    share = sum(map(symbolic.is_held_out, keys)) / len(keys)
    assert 0.22 < share < 0.28
    assert [symbolic.is_held_out(k) for k in keys[:50]] == [
        symbolic.is_held_out(k) for k in keys[:50]
    ]


class PartOracle(nn.Module):
    """Knows the held-out answers (looked up by a sequence's inputs) and gives the right
    one at about two scored steps in three, a wrong one elsewhere."""

    def __init__(self, task: Task, batch_size: int) -> None:
        super().__init__()
        self.size = task.output_size
        self.answers: dict[bytes, list[int]] = {}
        for batch in task.batches("eval", batch_size, generator(EVAL_SEED, "eval-data")):
            for b in range(batch.inputs.shape[1]):
                self.answers[batch.inputs[:, b].numpy().tobytes()] = batch.targets[:, b, 0].tolist()

    def forward(self, inputs: torch.Tensor) -> tuple[torch.Tensor, None]:
        steps, size, _ = inputs.shape
        outputs = torch.zeros(steps, size, self.size)
        for b in range(size):
            key = inputs[:, b].numpy().tobytes()
            salt = zlib.crc32(key)
            for t, answer in enumerate(self.answers[key]):
                right = (salt + 7 * t) % 3 != 0
                outputs[t, b, answer if right else (answer + 1) % self.size] = 1.0
        return outputs, None


TASKS = {
    "logical": (LogicalTask, dict(eval_size=90, max_depth=3)),
    "temporal": (TemporalTask, dict(eval_size=90, continuation=3)),
    "knowledge": (KnowledgeTask, dict(eval_size=60, max_path=3, graphs=["random", "family"])),
}


@pytest.mark.parametrize("name", list(TASKS))
def test_bucket_metrics_are_exact_over_the_held_out_split(name):
    cls, options = TASKS[name]
    task = cls(cls.Config(**options))
    model = PartOracle(task, 16)
    got = evaluate(model, task, 16, torch.device("cpu"))  # batches of 16, the last smaller

    # Re-derive every metric sequence by sequence, in plain Python.
    share: dict[str, list[float]] = {}  # per bucket, each sequence's share of right steps
    exact: dict[str, list[float]] = {}  # per bucket, whether all its steps were right
    naive: dict[str, list[tuple[float, int]]] = {}  # per-batch bucket means, batch sizes
    for batch in task.batches("eval", 16, generator(EVAL_SEED, "eval-data")):
        outputs = model(batch.inputs)[0]
        in_batch: dict[str, list[float]] = {}
        for b in range(batch.inputs.shape[1]):
            scored = [t for t in range(batch.inputs.shape[0]) if batch.mask[t, b] == 1]
            right = [int(outputs[t, b].argmax()) == int(batch.targets[t, b, 0]) for t in scored]
            bucket = task.bucket_names[int(batch.targets[0, b, 1])]
            for name_ in ("accuracy", bucket):
                share.setdefault(name_, []).append(sum(right) / len(right))
                exact.setdefault(name_, []).append(float(all(right)))
            in_batch.setdefault(bucket, []).append(sum(right) / len(right))
        for bucket, values in in_batch.items():
            naive.setdefault(bucket, []).append((sum(values) / len(values), batch.inputs.shape[1]))
    assert len(share["accuracy"]) == task.config.eval_size
    want = {name_: sum(v) / len(v) for name_, v in share.items()}
    if name == "temporal":
        want["sequence_accuracy"] = sum(exact["accuracy"]) / len(exact["accuracy"])
    if name == "knowledge" and "accuracy_path" in exact:
        want["path_accuracy"] = sum(exact["accuracy_path"]) / len(exact["accuracy_path"])
    assert set(got) == {"loss", *want}
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-6), key
    assert 0.3 < got["accuracy"] < 0.95  # partly right, so the check has teeth
    # The pitfall Ratio avoids: per-batch bucket means, averaged weighted by batch size.
    off = [
        abs(sum(m * n for m, n in pairs) / sum(n for _, n in pairs) - want[bucket])
        for bucket, pairs in naive.items()
    ]
    assert max(off) > 1e-6
