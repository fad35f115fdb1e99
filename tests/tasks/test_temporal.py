"""The temporal task against its definition: every answer re-derived from the shown tokens."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
import torch
from typer.testing import CliRunner

from nma import UsageError
from nma.cli import app
from nma.config import validate_options
from nma.task import combine_metrics
from nma_tasks.temporal import TemporalTask

KINDS = ["periodic", "arithmetic", "ordering"]


def make(**options) -> TemporalTask:
    return TemporalTask(TemporalTask.Config(**options))


def smallest_period(seq: list[int]) -> int | None:
    """The smallest q <= len/2 with seq[t] == seq[t - q] throughout, if any."""
    for q in range(1, len(seq) // 2 + 1):
        if all(seq[t] == seq[t - q] for t in range(q, len(seq))):
            return q
    return None


def check_problem(task: TemporalTask, batch, b: int) -> tuple[str, int]:
    """Re-derive problem ``b``'s answers; return its kind and its size (length or events)."""
    c = task.config
    s = c.symbols
    before, after, precedes, answer = s, s + 1, s + 2, s + 3
    no, yes = s, s + 1
    x = batch.inputs[:, b]
    assert torch.all(x.sum(-1) <= 1)
    length = int((x.sum(-1) > 0).sum())
    assert torch.all(x[length:] == 0)
    tokens = x[:length].argmax(-1).tolist()
    first = tokens.index(answer)
    assert all(t == answer for t in tokens[first:])
    scored = [t for t in range(x.shape[0]) if batch.mask[t, b] == 1]
    assert scored == list(range(first, length))
    targets = [int(batch.targets[t, b, 0]) for t in scored]
    assert batch.targets.shape[-1] == 2 and torch.all(
        batch.targets[:, b, 1] == batch.targets[0, b, 1]
    )
    kind = KINDS[int(batch.targets[0, b, 1])]
    body = tokens[:first]
    if kind == "ordering":
        assert len(scored) == 1
        question = next(i for i, t in enumerate(body) if t >= s)
        events, (q, *asked) = body[:question], body[question:]
        assert len(set(events)) == len(events) and c.min_events <= len(events) <= c.max_events
        pos = {e: i for i, e in enumerate(events)}
        if q == before:
            assert targets == [events[pos[asked[0]] - 1]] and pos[asked[0]] > 0
        elif q == after:
            assert targets == [events[pos[asked[0]] + 1]]
        else:
            assert q == precedes and asked[0] != asked[1]
            assert targets == [yes if pos[asked[0]] < pos[asked[1]] else no]
        return kind, len(events)
    assert len(scored) == c.continuation and all(t < s for t in body)
    assert c.min_length <= len(body) <= c.max_length
    if kind == "periodic":
        q = smallest_period(body)
        assert q is not None and c.min_period <= q <= c.max_period  # two periods shown
        extended = list(body)
        for _ in range(c.continuation):
            extended.append(extended[-q])
    else:
        step = (body[1] - body[0]) % c.base
        assert step != 0
        assert all((b2 - b1) % c.base == step for b1, b2 in itertools.pairwise(body))
        extended = list(body)
        for _ in range(c.continuation):
            extended.append((extended[-1] + step) % c.base)
    assert targets == extended[len(body) :]
    return kind, len(body)


def test_every_answer_follows_from_the_rule():
    task = make(continuation=3)
    batches = list(itertools.islice(task.batches("train", 64, torch.Generator().manual_seed(1)), 4))
    kinds = Counter(check_problem(task, batch, b)[0] for batch in batches for b in range(64))
    assert set(kinds) == set(KINDS) and min(kinds.values()) > 60


def test_ordering_questions_are_balanced():
    task = make(kinds=["ordering"])
    batch = next(task.batches("train", 600, torch.Generator().manual_seed(2)))
    for b in range(600):
        check_problem(task, batch, b)
    s = task.config.symbols
    questions = Counter(int(batch.inputs[:, b, s : s + 3].sum(0).argmax()) for b in range(600))
    assert all(150 < n < 250 for n in questions.values())
    answers = Counter(int(batch.targets[..., 0][batch.mask.bool()][b]) for b in range(600))
    assert 60 < answers[s] < 140 and 60 < answers[s + 1] < 140  # no / yes


def test_kinds_option_restricts_the_mix():
    task = make(kinds=["arithmetic"], base=7)
    batch = next(task.batches("train", 32, torch.Generator().manual_seed(3)))
    assert {check_problem(task, batch, b)[0] for b in range(32)} == {"arithmetic"}
    perfect = torch.nn.functional.one_hot(batch.targets[..., 0], task.output_size).float()
    assert set(task.metrics(perfect, batch)) == {
        "accuracy",
        "sequence_accuracy",
        "accuracy_arithmetic",
    }


def canonical(task: TemporalTask, batch, b: int) -> tuple:
    x = batch.inputs[:, b]
    length = int((x.sum(-1) > 0).sum())
    return tuple(x[:length].argmax(-1).tolist())


@pytest.mark.parametrize("disjoint", [True, False])
def test_held_out_problems_are_never_trained_on(disjoint):
    # Arithmetic progressions mod 5 of length 2 or 3: 40 problems, overlap certain.
    options = dict(kinds=["arithmetic"], base=5, symbols=5, min_length=2, max_length=3)
    task = make(**options, eval_size=64, disjoint_eval=disjoint)
    train = itertools.islice(task.batches("train", 64, torch.Generator().manual_seed(0)), 5)
    seen = {canonical(task, batch, b) for batch in train for b in range(64)}
    held = {
        canonical(task, batch, b)
        for batch in task.batches("eval", 64, torch.Generator().manual_seed(1))
        for b in range(batch.inputs.shape[1])
    }
    assert held and seen
    assert (not (seen & held)) == disjoint


def test_eval_split_is_finite_and_fixed_and_train_is_seeded():
    task = make(eval_size=50)
    first = list(task.batches("eval", 32, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 32, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [32, 18]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    a = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 20))
    b = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 20))
    assert all(torch.equal(x.targets, y.targets) for x, y in zip(a, b, strict=True))


def test_curriculum_grows_lengths_and_events():
    task = make(min_length=4, max_length=12, min_events=3, max_events=9, curriculum_steps=6)
    stream = task.batches("train", 48, torch.Generator().manual_seed(3))
    sizes = []
    for index, batch in enumerate(itertools.islice(stream, 8)):
        problems = [check_problem(task, batch, b) for b in range(48)]
        grow = min(index, 6) / 6
        longest = max(n for k, n in problems if k != "ordering")
        most = max(n for k, n in problems if k == "ordering")
        assert longest <= 4 + round(8 * grow) and most <= 3 + round(6 * grow)
        sizes.append((longest, most))
    assert sizes[0] == (4, 3) and sizes[-1][0] > 9 and sizes[-1][1] > 6


def test_metrics_on_known_outputs():
    task = make(continuation=2)
    batch = next(task.batches("train", 12, torch.Generator().manual_seed(4)))
    kinds = [KINDS[int(batch.targets[0, b, 1])] for b in range(12)]
    perfect = torch.nn.functional.one_hot(batch.targets[..., 0], task.output_size).float()
    assert all(v == 1.0 for v in combine_metrics([(task.metrics(perfect, batch), 12)]).values())
    wrong = perfect.clone()
    wrong[~batch.mask.bool()] = torch.roll(wrong[~batch.mask.bool()], 1, -1)  # not scored
    b = kinds.index("periodic")
    t = int(batch.mask[:, b].nonzero()[0])
    wrong[t, b] = torch.roll(wrong[t, b], 1)  # one of two steps wrong
    metrics = combine_metrics([(task.metrics(wrong, batch), 12)])
    assert set(metrics) == {"accuracy", "sequence_accuracy", *(f"accuracy_{k}" for k in kinds)}
    assert metrics["accuracy"] == pytest.approx(1 - 0.5 / 12)
    assert metrics["sequence_accuracy"] == pytest.approx(11 / 12)
    assert metrics["accuracy_periodic"] == pytest.approx(1 - 0.5 / kinds.count("periodic"))
    assert metrics["accuracy_ordering"] == metrics["accuracy_arithmetic"] == 1.0


def test_loss_is_cross_entropy_at_the_scored_steps():
    task = make()
    batch = next(task.batches("train", 6, torch.Generator().manual_seed(6)))
    logits = torch.randn(*batch.mask.shape, task.output_size)
    terms = [
        -torch.log_softmax(logits[t, b], -1)[batch.targets[t, b, 0]]
        for t, b in batch.mask.nonzero().tolist()
    ]
    assert torch.allclose(task.loss(logits, batch), torch.stack(terms).mean(), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": []}, "kinds is empty"),
        ({"kinds": ["periodic", "periodic"]}, "twice"),
        ({"kinds": ["spiral"]}, "periodic"),
        ({"min_length": 3, "min_period": 2}, "2 \\* min_period"),
        ({"max_period": 7, "max_length": 12}, "max_period"),
        ({"base": 20}, "base"),
        ({"max_events": 13}, "max_events"),
        ({"min_events": 5, "max_events": 4}, "min_events"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(TemporalTask.Config, options, "task", "temporal")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    out = tmp_path / "run"
    args = [
        "run", "--memory", memory, "--controller", "lstm", "--task", "temporal",
        "--steps", "2", "--no-progress", "--device", "cpu", "--out", str(out),
        "--set", "memory.slots=8", "--set", "controller.hidden_size=16",
        "--set", "train.eval_every=0", "--set", "train.checkpoint_every=0",
        "--set", "train.batch_size=4", "--set", "train.log_every=1",
        "--set", "task.max_length=6", "--set", "task.max_period=3",
        "--set", "task.max_events=4", "--set", "task.eval_size=8",
        "--set", 'task.kinds=["periodic", "ordering"]',
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 2
    assert "accuracy_arithmetic" not in summary["eval"]
    assert 0.0 <= summary["eval"]["accuracy"] <= 1.0
