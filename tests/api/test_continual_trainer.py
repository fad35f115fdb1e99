"""ContinualLearningTrainer: its accuracy matrix is the accuracies measured
independently, its metrics are nma.continual_metrics' on it, its regularizers are the
registered plugins with their end_experience hooks; ContinualLearningModel's heads."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from nma import ContinualLearningModel, ContinualLearningTrainer, UsageError
from nma.continual_metrics import summarize
from nma.training import last_step


def task_data(task: int, size: int = 24, seed: int = 0) -> tuple[DataLoader, DataLoader]:
    """Task ``task``: sequences ``(B, 4, 6)``; the class (0 or 1) is whether channel
    ``task`` of the last step is positive. Train loader (shuffled), held-out loader."""
    gen = torch.Generator().manual_seed(100 * task + seed)
    x = torch.randn(2 * size, 4, 6, generator=gen)
    y = (x[:, -1, task] > 0).long()
    loader_gen = torch.Generator().manual_seed(task)
    train = DataLoader(TensorDataset(x[:size], y[:size]), batch_size=8, shuffle=True,
                       generator=loader_gen)  # fmt: skip
    return train, DataLoader(TensorDataset(x[size:], y[size:]), batch_size=10)


def independent_accuracy(model: ContinualLearningModel, task: int, loader: DataLoader) -> float:
    """The share of held-out sequences whose last-step answer of head ``task`` is right,
    by a loop of the test's own."""
    correct = total = 0
    with torch.no_grad():
        model.eval()
        for x, y in loader:
            logits = model(x, task=task)[0][:, -1]
            correct += int((logits.argmax(-1) == y).sum())
            total += len(y)
        model.train()
    return correct / total


def make(
    tasks: int = 3, **options: object
) -> tuple[ContinualLearningModel, ContinualLearningTrainer]:
    torch.manual_seed(0)
    model = ContinualLearningModel(6, 12, 8, 4, tasks, output_size=2, batch_first=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-2)
    trainer = ContinualLearningTrainer(model, optimizer, nn.CrossEntropyLoss(), device="cpu",
                                       output=last_step, progress=False, **options)  # fmt: skip
    return model, trainer


def test_accuracy_matrix_and_metrics_with_every_task_known_up_front() -> None:
    data = [task_data(t) for t in range(3)]
    model, trainer = make(
        eval_loaders=[held_out for _, held_out in data],
        regularizers={"ewc": {"weight": 10.0, "samples": 8}, "replay": {"capacity": 16}},
    )
    b = [independent_accuracy(model, t, data[t][1]) for t in range(3)]
    expected = []
    for t, (train, held_out) in enumerate(data):
        history = trainer.train_task(t, train, held_out, epochs=2)
        assert history.epochs == 2 and len(history.val) == 2
        expected.append([independent_accuracy(model, j, data[j][1]) for j in range(3)])
        assert model.task == t  # the head of the task just trained is selected again
    assert trainer.initial_accuracy == b
    assert trainer.accuracy_matrix == expected
    assert trainer.metrics() == summarize(expected, b)  # acc, bwt, fwt, forgetting
    assert set(trainer.metrics()) == {"acc", "bwt", "fwt", "forgetting"}
    diagonal = [row[i] for i, row in enumerate(expected)]
    assert sum(diagonal) > sum(b) + 0.3  # the tasks are learned (a little, in 6 steps each)
    ewc = trainer.regularizers["ewc"]
    assert len(ewc.anchors) == 3  # its end_experience ran after each task
    assert trainer.regularizers["replay"].seen == 3 * 24 * 2


def test_tasks_given_one_at_a_time() -> None:
    data = [task_data(t, seed=1) for t in range(2)]
    model, trainer = make(2, regularizers=["si"])
    untrained = independent_accuracy(model, 0, data[0][1])
    trainer.train_task("a", *data[0], epochs=2)
    assert trainer.task_ids == ["a"] and len(trainer.accuracy_matrix) == 1
    before = independent_accuracy(model, 1, data[1][1])  # R[0][1]: task b before training it
    after_a = independent_accuracy(model, 0, data[0][1])
    trainer.train_task("b", *data[1], epochs=2)
    r = [[after_a, before], [independent_accuracy(model, j, data[j][1]) for j in range(2)]]
    assert trainer.accuracy_matrix == r
    b = trainer.initial_accuracy
    assert b[0] == untrained and math.isnan(b[1])  # task b's held-out data came too late
    assert trainer.metrics() == summarize(r)  # acc, bwt, forgetting: no FWT without b
    assert trainer.evaluate("b") == r[1][1]


def test_regularizer_instances_and_a_metric_of_ones_own() -> None:
    from nma.build import build_regularizer

    l2 = build_regularizer("l2", {"weight": 0.5})
    calls = []

    def share_of_ones(outputs: torch.Tensor, targets: torch.Tensor) -> float:
        calls.append(outputs.shape)
        return float((targets == 1).float().mean())

    _, trainer = make(1, regularizers=[l2], metric=share_of_ones)
    train, held_out = task_data(0)
    trainer.train_task(0, train, held_out)
    assert trainer.regularizers == {"L2Regularizer": l2}
    ones = float(torch.cat([y for _, y in held_out]).float().mean())
    assert trainer.accuracy_matrix == [[pytest.approx(ones)]] and calls[0] == (10, 2)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"regularizers": "ewk"}, "ewc"),  # an unknown name: the close match
        ({"regularizers": {"ewc": {"wieght": 1.0}}}, "wieght"),
        ({"regularizers": 3}, "regularizers must be"),
        ({"metric": "accuracy"}, "metric must be callable"),
        ({"checkpoint_dir": "x"}, "does not write checkpoints"),
        ({"patience": 0}, "patience must be"),
        ({"eval_loaders": [None]}, "held-out data of task 0 must be"),
    ],
)
def test_bad_arguments(options: dict, fragment: str) -> None:
    with pytest.raises(UsageError, match=fragment):
        make(**options)


def test_tasks_in_a_wrong_order_or_twice_are_refused() -> None:
    data = [task_data(t) for t in range(2)]
    _, trainer = make(2, eval_loaders={"x": data[0][1], "y": data[1][1]})
    with pytest.raises(UsageError, match="next is 'x'"):
        trainer.train_task("y", *data[1])
    with pytest.raises(UsageError, match="come first"):
        trainer.train_task("z", *data[1])
    trainer.train_task("x", data[0][0])  # its held-out data came with eval_loaders
    with pytest.raises(UsageError, match="already trained"):
        trainer.train_task("x", *data[0])
    _, lazy = make(2)
    with pytest.raises(UsageError, match="needs held-out data"):
        lazy.train_task(0, data[0][0])


def test_continual_learning_model_answers_with_the_selected_head() -> None:
    torch.manual_seed(0)
    model = ContinualLearningModel(6, 12, 8, 4, 3, output_size=2)
    x = torch.randn(5, 2, 6)
    heads = [model(x, task=t)[0] for t in range(3)]
    assert all(h.shape == (5, 2, 2) for h in heads)
    assert not torch.allclose(heads[0], heads[1])
    model.select_task(2)
    assert torch.equal(model(x)[0], heads[2]) and model.output_size == 2
    whole = model.head(torch.zeros(1, model.head.in_features))
    assert whole.shape == (1, 6)  # one linear map holds the three heads
    for bad in (3, -1, "0"):
        with pytest.raises(UsageError, match="task must be"):
            model.select_task(bad)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="num_tasks"):
        ContinualLearningModel(6, 12, 8, 4, 0)
