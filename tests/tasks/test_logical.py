"""The logical task against its definition: every answer re-derived by forward chaining."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import pytest
import torch
from typer.testing import CliRunner

from nma import Ratio, UsageError
from nma.cli import app
from nma.config import validate_options
from nma.task import combine_metrics
from nma_tasks.logical import LogicalTask

NO, YES = 0, 1


def make(**options) -> LogicalTask:
    return LogicalTask(LogicalTask.Config(**options))


def decode(task: LogicalTask, batch, b: int) -> dict:
    """Read problem ``b`` back from its inputs, checking the grammar as it goes."""
    x = batch.inputs[:, b]
    length = int((x.sum(-1) > 0).sum())
    assert torch.all(x[length:] == 0)  # padding only at the end
    answer_steps = 1 + task.config.think_steps
    answer = task.input_size - 1
    assert torch.all(x[length - answer_steps : length, answer] == 1)
    assert torch.all(x[length - answer_steps : length].sum(-1) == 1)  # the `=` flag alone
    body = x[: length - answer_steps]
    if task.config.encoding == "clauses":
        p = decode_clauses(task, body)
    else:
        p = decode_tokens(task, body)
    return {**p, "steps": length}


def decode_tokens(task: LogicalTask, x: torch.Tensor) -> dict:
    """Facts, rules and query of a ``tokens`` problem (without its answer steps)."""
    atoms = task.config.max_atoms
    dot, implies, query = atoms, atoms + 1, atoms + 2
    assert torch.all(x.sum(-1) == 1)  # one token per step
    tokens = x.argmax(-1).tolist()
    assert tokens[-2] == query and tokens[-1] < atoms
    facts, rules, clause = [], [], []
    for token in tokens[:-2]:
        if token == dot:
            if implies in clause:
                assert clause.index(implies) == len(clause) - 2  # body -> head .
                body, head = clause[:-2], clause[-1]
                assert 1 <= len(body) <= 2 and all(a < atoms for a in body) and head < atoms
                assert len(set(body)) == len(body) and head not in body
                rules.append((tuple(body), head))
            else:
                assert len(clause) == 1 and clause[0] < atoms
                facts.append(clause[0])
            clause = []
        else:
            clause.append(token)
    assert clause == []
    return {"facts": facts, "rules": rules, "query": tokens[-1]}


def decode_clauses(task: LogicalTask, x: torch.Tensor) -> dict:
    """Facts, rules and query of a ``clauses`` problem (without its answer steps)."""
    atoms = task.config.max_atoms
    body_block, head_block, flags = x[:, :atoms], x[:, atoms : 2 * atoms], x[:, 2 * atoms :]
    assert torch.all(head_block.sum(-1) == 1)  # every step names one head (or the query)
    assert torch.all(flags[:-1] == 0) and flags[-1].tolist() == [1.0, 0.0]  # `?` last
    assert body_block[-1].sum() == 0
    facts, rules = [], []
    for t in range(x.shape[0] - 1):
        head = int(head_block[t].argmax())
        body = tuple(body_block[t].nonzero().flatten().tolist())
        assert len(body) <= 2 and head not in body
        if body:
            rules.append((body, head))
        else:
            facts.append(head)
    return {"facts": facts, "rules": rules, "query": int(head_block[-1].argmax())}


def proof_depths(facts: list[int], rules: list[tuple[tuple[int, ...], int]]) -> dict[int, int]:
    """Independent solver: relax depth(head) <= 1 + max depth(body) to a fixed point."""
    depth = dict.fromkeys(facts, 0)
    changed = True
    while changed:
        changed = False
        for body, head in rules:
            if all(a in depth for a in body):
                candidate = 1 + max(depth[a] for a in body)
                if candidate < depth.get(head, 10**9):
                    depth[head] = candidate
                    changed = True
    return depth


def check_batch(task: LogicalTask, batch, depth_range: tuple[int, int]) -> list[int | None]:
    """Check every problem of ``batch``; return each one's proof depth (None: unprovable)."""
    c = task.config
    T, B, _ = batch.inputs.shape
    assert batch.targets.shape == (T, B, 2)
    depths = []
    for b in range(B):
        p = decode(task, batch, b)
        answer_step = p["steps"] - 1
        assert batch.mask[:, b].tolist() == [float(t == answer_step) for t in range(T)]
        depth = proof_depths(p["facts"], p["rules"]).get(p["query"])
        assert int(batch.targets[answer_step, b, 0]) == (NO if depth is None else YES)
        bucket = task.buckets - 1 if depth is None else depth
        assert torch.all(batch.targets[:, b, 1] == bucket)
        if depth is not None:
            assert depth_range[0] <= depth <= depth_range[1]
        used = {p["query"], *p["facts"]} | {a for body, h in p["rules"] for a in (*body, h)}
        assert len(used) <= c.max_atoms
        assert len(p["rules"]) <= c.max_rules
        assert len(set(p["facts"])) == len(p["facts"]) <= c.max_facts
        depths.append(depth)
    return depths


@pytest.mark.parametrize(
    "options",
    [{}, {"think_steps": 3}, {"encoding": "clauses"}, {"encoding": "clauses", "think_steps": 2}],
)
def test_every_answer_follows_by_forward_chaining(options):
    task = make(**options)
    stream = task.batches("train", 64, torch.Generator().manual_seed(1))
    depths = [d for batch in itertools.islice(stream, 4) for d in check_batch(task, batch, (0, 3))]
    answers = Counter(d is not None for d in depths)
    assert answers[True] == answers[False] == 128  # yes and no exactly balanced
    assert set(depths) == {None, 0, 1, 2, 3}


def test_both_encodings_carry_the_same_problems():
    # The encoding changes only how a problem is written, not which problems are drawn.
    tokens, clauses = make(), make(encoding="clauses", think_steps=2)
    assert (tokens.input_size, clauses.input_size) == (16, 26)
    for split in ("train", "eval"):
        a = next(tokens.batches(split, 32, torch.Generator().manual_seed(8)))
        b = next(clauses.batches(split, 32, torch.Generator().manual_seed(8)))
        assert torch.equal(a.targets[..., 1][0], b.targets[..., 1][0])  # same buckets
        for i in range(32):
            assert canonical(tokens, a, i) == canonical(clauses, b, i)
            p, q = decode(tokens, a, i), decode(clauses, b, i)
            # a token problem spends 2 steps a fact, len(body) + 3 a rule, 3 on `? q =`
            assert p["steps"] == 2 * len(p["facts"]) + sum(len(r) + 3 for r, _ in p["rules"]) + 3
            assert q["steps"] == len(q["facts"]) + len(q["rules"]) + 1 + 3


def test_answer_is_not_given_away_by_a_shallow_cue():
    # Only the proof decides: whether the query atom occurs earlier, whether some rule
    # concludes it, how many facts there are or how long the problem is tells little.
    task = make()
    stream = task.batches("train", 128, torch.Generator().manual_seed(7))
    rows, lengths = [], {True: [], False: []}
    for batch in itertools.islice(stream, 3):
        depths = check_batch(task, batch, (0, 3))
        for b, depth in enumerate(depths):
            p = decode(task, batch, b)
            heads = {head for _, head in p["rules"]}
            atoms = set(p["facts"]) | {a for body, _ in p["rules"] for a in body} | heads
            rows.append(
                (depth is not None, (p["query"] in atoms, p["query"] in heads, len(p["facts"])))
            )
            lengths[depth is not None].append(p["steps"])
    for i in range(3):
        by_value: dict = {}
        for answer, cues in rows:
            by_value.setdefault(cues[i], Counter())[answer] += 1
        best = sum(max(c.values()) for c in by_value.values()) / len(rows)
        assert best < 0.6, (i, best)  # 0.5 is chance
    mean = {k: sum(v) / len(v) for k, v in lengths.items()}
    assert abs(mean[True] - mean[False]) < 2.0, mean


def test_rules_and_atoms_reach_their_ranges():
    task = make(min_atoms=8, max_atoms=8, min_rules=6, max_rules=6, max_depth=2)
    batch = next(task.batches("train", 64, torch.Generator().manual_seed(2)))
    depths = check_batch(task, batch, (0, 2))
    for depth in (None, 0, 1, 2):  # distractors rarely have to be dropped, at any depth
        counts = [len(decode(task, batch, b)["rules"]) for b, d in enumerate(depths) if d == depth]
        assert sum(n == 6 for n in counts) >= 0.75 * len(counts) > 0


def test_eval_split_is_finite_fixed_and_uses_its_depths():
    task = make(max_depth=2, eval_min_depth=3, eval_max_depth=4, eval_size=40)
    first = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [16, 16, 8]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    assert all(torch.equal(a.targets, b.targets) for a, b in zip(first, again, strict=True))
    depths = [d for batch in first for d in check_batch(task, batch, (3, 4))]
    assert sum(d is None for d in depths) == 20
    assert task.bucket_names[-2:] == ["accuracy_depth_4", "accuracy_unprovable"]


def test_eval_min_rules_sets_the_held_out_rule_range_only():
    # Training starts from bare fact lists (min_rules = 0); held-out problems keep 3-4 rules.
    task = make(min_rules=0, max_rules=4, max_depth=1, eval_min_rules=3, eval_size=48)
    train = next(task.batches("train", 64, torch.Generator().manual_seed(6)))
    counts = [len(decode(task, train, b)["rules"]) for b in range(64)]
    check_batch(task, train, (0, 1))
    assert min(counts) < 3
    held = [
        len(decode(task, batch, b)["rules"])
        for batch in task.batches("eval", 16, torch.Generator().manual_seed(6))
        for b in range(batch.inputs.shape[1])
    ]
    assert len(held) == 48 and min(held) >= 3 and max(held) <= 4
    default = make(min_rules=0, max_rules=4, max_depth=1, eval_size=48)
    held = [
        len(decode(default, batch, b)["rules"])
        for batch in default.batches("eval", 16, torch.Generator().manual_seed(6))
        for b in range(batch.inputs.shape[1])
    ]
    assert min(held) < 3  # without it, held-out problems follow min_rules


def canonical(task: LogicalTask, batch, b: int) -> tuple:
    p = decode(task, batch, b)
    rules = tuple(sorted((tuple(sorted(body)), head) for body, head in p["rules"]))
    return tuple(sorted(p["facts"])), rules, p["query"]


@pytest.mark.parametrize("disjoint", [True, False])
def test_held_out_problems_are_never_trained_on(disjoint):
    # A tiny space (3 atoms, depth 0, no rules) where overlap would be certain.
    options = dict(min_atoms=2, max_atoms=3, max_rules=0, min_rules=0, max_depth=0, max_facts=2)
    task = make(**options, eval_size=64, disjoint_eval=disjoint)
    train = itertools.islice(task.batches("train", 64, torch.Generator().manual_seed(0)), 10)
    seen = {canonical(task, batch, b) for batch in train for b in range(64)}
    held = {
        canonical(task, batch, b)
        for batch in task.batches("eval", 64, torch.Generator().manual_seed(1))
        for b in range(batch.inputs.shape[1])
    }
    assert held and seen
    assert (not (seen & held)) == disjoint


def test_train_stream_is_endless_and_seeded():
    task = make()
    a = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 30))
    b = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 30))
    assert len(a) == 30
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x.targets, y.targets) for x, y in zip(a, b, strict=True))


def test_curriculum_grows_depth_and_size_linearly():
    task = make(min_depth=0, max_depth=4, min_atoms=4, max_atoms=10, curriculum_steps=8)
    stream = task.batches("train", 32, torch.Generator().manual_seed(3))
    batches = list(itertools.islice(stream, 10))
    for index, batch in enumerate(batches):
        depths = check_batch(task, batch, (0, 4))
        ceiling = round(4 * min(index, 8) / 8)
        assert max(d for d in depths if d is not None) <= ceiling
        atoms_ceiling = 4 + round(6 * min(index, 8) / 8)
        for b, depth in enumerate(depths):
            p = decode(task, batch, b)
            used = {p["query"], *p["facts"]} | {a for r in p["rules"] for a in (*r[0], r[1])}
            assert len(used) <= max(atoms_ceiling, (depth or 0) + 2)
    first = check_batch(task, batches[0], (0, 0))
    assert set(first) == {None, 0}
    assert 4 in check_batch(task, batches[9], (0, 4))


def test_metrics_count_right_answers_per_depth():
    task = make(max_depth=2, eval_max_depth=3)  # a depth-3 bucket no training batch fills
    batch = next(task.batches("train", 16, torch.Generator().manual_seed(4)))
    depths = check_batch(task, batch, (0, 2))
    target = batch.targets[..., 0]
    perfect = torch.nn.functional.one_hot(target, 2).float() * 4 - 2
    raw = task.metrics(perfect, batch)
    assert isinstance(raw["accuracy"], float)
    assert all(isinstance(raw[name], Ratio) for name in task.bucket_names)
    assert raw["accuracy_depth_3"] == Ratio(0.0, 0.0)  # none in the batch: left out
    metrics = combine_metrics([(raw, 16)])
    assert set(metrics) == {"accuracy", "accuracy_unprovable"} | {
        f"accuracy_depth_{d}" for d in depths if d is not None
    }
    assert all(v == 1.0 for v in metrics.values())
    wrong = perfect.clone()
    wrong[~batch.mask.bool()] *= -1  # unscored steps do not count
    flipped = [b for b, d in enumerate(depths) if d is None][:3] + [depths.index(1)]
    for b in flipped:
        wrong[:, b] *= -1
    raw = task.metrics(wrong, batch)
    unprovable = sum(d is None for d in depths)
    assert raw["accuracy_unprovable"] == Ratio(unprovable - 3, unprovable)
    metrics = combine_metrics([(raw, 16)])
    assert metrics["accuracy"] == pytest.approx(1 - 4 / 16)
    assert metrics["accuracy_unprovable"] == pytest.approx(1 - 3 / unprovable)
    assert metrics["accuracy_depth_1"] == pytest.approx(1 - 1 / depths.count(1))
    assert metrics["accuracy_depth_0"] == 1.0


def test_loss_is_cross_entropy_at_the_answer_step():
    task = make()
    batch = next(task.batches("train", 5, torch.Generator().manual_seed(6)))
    logits = torch.randn(*batch.mask.shape, 2)
    terms = [
        -torch.log_softmax(logits[t, b], -1)[batch.targets[t, b, 0]]
        for t, b in batch.mask.nonzero().tolist()
    ]
    assert len(terms) == 5
    assert torch.allclose(task.loss(logits, batch), torch.stack(terms).mean(), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"min_depth": 3, "max_depth": 1}, "min_depth"),
        ({"eval_min_depth": 5, "eval_max_depth": 4, "max_atoms": 8}, "eval_min_depth"),
        ({"max_atoms": 4, "max_depth": 3}, "max_atoms"),
        ({"max_depth": 9, "max_atoms": 20, "max_rules": 5}, "max_rules"),
        ({"min_facts": 0}, "greater than or equal to 1"),
        ({"eval_min_rules": 9, "max_rules": 8}, "eval_min_rules"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(LogicalTask.Config, options, "task", "logical")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    out = tmp_path / "run"
    args = [
        "run", "--memory", memory, "--controller", "lstm", "--task", "logical",
        "--steps", "2", "--no-progress", "--device", "cpu", "--out", str(out),
        "--set", "memory.slots=8", "--set", "controller.hidden_size=16",
        "--set", "train.eval_every=0", "--set", "train.checkpoint_every=0",
        "--set", "train.batch_size=4", "--set", "train.log_every=1",
        "--set", "task.max_atoms=6", "--set", "task.min_atoms=4", "--set", "task.max_rules=3",
        "--set", "task.max_depth=2", "--set", "task.eval_size=8",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 2
    assert 0.0 <= summary["eval"]["accuracy"] <= 1.0
    scores = {k: v for k, v in summary["eval"].items() if k != "loss"}
    assert "accuracy_unprovable" in scores and all(0.0 <= v <= 1.0 for v in scores.values())
