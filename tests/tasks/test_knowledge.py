"""The knowledge task against its definition: paths checked with networkx, family
relations by an independent rule evaluation, links and traversals from the triples."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import networkx as nx
import pytest
import torch
from typer.testing import CliRunner

from nma import UsageError
from nma.cli import app
from nma.config import validate_options
from nma.task import combine_metrics
from nma_tasks.knowledge import KnowledgeTask

QUERIES = ["link", "multihop", "path"]
DERIVED = ["parent", "child", "sibling", "grandparent", "uncle", "aunt", "cousin"]


def make(**options) -> KnowledgeTask:
    return KnowledgeTask(KnowledgeTask.Config(**options))


def decode(task: KnowledgeTask, batch, b: int) -> dict:
    """Triples, query steps, scored answers of problem ``b``, from the documented layout."""
    n, k = task.config.nodes, task.config.relations
    r_count = k + 10
    query_flag, answer_flag = 2 * n + r_count, 2 * n + r_count + 1
    assert batch.inputs.shape[-1] == answer_flag + 1
    x = batch.inputs[:, b]
    length = int((x.sum(-1) > 0).sum())
    assert torch.all(x[length:] == 0)

    def blocks(step: torch.Tensor) -> tuple[int | None, int | None, int | None]:
        parts = (step[:n], step[n : n + r_count], step[n + r_count : 2 * n + r_count])
        assert all(part.sum() <= 1 for part in parts)
        return tuple(int(p.argmax()) if p.sum() else None for p in parts)  # type: ignore[return-value]

    triples, queries, answers = [], [], []
    for t in range(length):
        step = x[t]
        if step[answer_flag]:
            assert step.sum() == 1
            answers.append(int(batch.targets[t, b, 0]) if batch.mask[t, b] else None)
        elif step[query_flag]:
            assert not answers
            queries.append(blocks(step))
        else:
            assert not queries and not answers
            triple = blocks(step)
            assert None not in triple
            triples.append(triple)
    assert batch.mask[:, b].sum() == sum(a is not None for a in answers)
    think = task.config.think_steps
    assert answers[:think] == [None] * think  # unscored think steps come first
    answers = answers[think:]
    assert batch.targets.shape[-1] == 2 and torch.all(
        batch.targets[:, b, 1] == batch.targets[0, b, 1]
    )
    kind = QUERIES[int(batch.targets[0, b, 1])]
    return {"triples": triples, "queries": queries, "answers": answers, "kind": kind}


def linked(task: KnowledgeTask, triples, s: int, r: int) -> set[int]:
    """Nodes r-linked from s: family relations one way, the others both ways."""
    k = task.config.relations
    out = {t for u, rel, t in triples if u == s and rel == r}
    if r < k:
        out |= {u for u, rel, t in triples if t == s and rel == r}
    return out


def family_holds(task: KnowledgeTask, triples, relation: str, x: int, y: int) -> bool:
    """Independent rule evaluation over son/daughter triples (p, son|daughter, c)."""
    son, daughter = task.config.relations, task.config.relations + 1

    def parent(a: int, p: int) -> bool:
        return (p, son, a) in triples or (p, daughter, a) in triples

    people = {u for u, _, _ in triples} | {t for _, _, t in triples}

    def sibling(a: int, c: int) -> bool:
        return a != c and any(parent(a, p) and parent(c, p) for p in people)

    if relation == "parent":
        return parent(x, y)
    if relation == "child":
        return parent(y, x)
    if relation == "sibling":
        return sibling(x, y)
    if relation == "grandparent":
        return any(parent(x, p) and parent(p, y) for p in people)
    if relation in ("uncle", "aunt"):
        gender = son if relation == "uncle" else daughter
        male_or_female = any((p, gender, y) in triples for p in people)
        return male_or_female and any(parent(x, p) and sibling(p, y) for p in people)
    assert relation == "cousin"
    return any(parent(x, p) and parent(y, q) and sibling(p, q) for p in people for q in people)


def check_problem(task: KnowledgeTask, batch, b: int) -> tuple[str, str | int]:
    """Re-derive problem ``b``'s answer; return its kind and a detail (relation, hops)."""
    c = task.config
    k, end = c.relations, c.nodes
    p = decode(task, batch, b)
    triples, queries, answers, kind = p["triples"], p["queries"], p["answers"], p["kind"]
    assert len(set(triples)) == len(triples)
    if kind == "path":
        assert len(queries) == 1 and len(answers) == c.max_path + 1
        s, rel, t = queries[0]
        assert rel == k + 9
        scored = [a for a in answers if a is not None]
        assert answers[: len(scored)] == scored and scored[-1] == end
        path = [s, *scored[:-1]]
        graph = nx.Graph([(u, v) for u, _, v in triples])
        assert path[-1] == t and 1 <= len(path) - 1 <= c.max_path
        assert nx.shortest_path_length(graph, s, t) == len(path) - 1
        assert list(nx.all_shortest_paths(graph, s, t)) == [path]  # the only shortest path
        return kind, len(path) - 1
    assert len(answers) == 1 and answers[0] is not None
    answer = answers[0]
    if kind == "link":
        ((s, r, t),) = queries
        assert t is None and r < k + 2
        assert linked(task, triples, s, r) == {answer}
        return kind, "family" if r >= k else "labelled"
    s, r, _ = queries[0]
    if r >= k + 2:  # a derived family relation
        assert len(queries) == 1
        relation = DERIVED[r - k - 2]
        people = {u for u, _, _ in triples} | {t for _, _, t in triples}
        holds = {y for y in people if family_holds(task, triples, relation, s, y)}
        assert holds == {answer}
        return kind, relation
    here, visited = s, [s]
    for i, (src, rel, tgt) in enumerate(queries):
        assert tgt is None and (src is None) == (i > 0) and rel < k
        (here,) = linked(task, triples, here, rel)  # every hop has one way to go
        visited.append(here)
    assert here == answer and len(set(visited)) == len(visited)
    assert c.min_hops <= len(queries) <= c.max_hops
    return kind, len(queries)


@pytest.mark.parametrize("think_steps", [0, 2])
def test_every_answer_is_right_and_unique(think_steps):
    task = make(think_steps=think_steps)
    batches = itertools.islice(task.batches("train", 64, torch.Generator().manual_seed(1)), 3)
    seen = Counter(check_problem(task, batch, b) for batch in batches for b in range(64))
    kinds = Counter(kind for kind, _ in seen.elements())
    assert set(kinds) == set(QUERIES)
    assert {("link", "family"), ("link", "labelled"), ("multihop", 2), ("multihop", 3)} <= set(seen)
    assert {("multihop", relation) for relation in DERIVED} & set(seen)


def test_family_relations_follow_their_rules():
    task = make(graphs=["family"], queries=["multihop", "link"], min_nodes=10, max_nodes=14)
    batches = itertools.islice(task.batches("train", 96, torch.Generator().manual_seed(2)), 2)
    seen = Counter(check_problem(task, batch, b) for batch in batches for b in range(96))
    assert set(DERIVED) <= {detail for _, detail in seen}


def test_paths_are_unique_shortest_paths_on_every_graph():
    graphs = ["random", "tree", "family", "karate_club", "florentine_families"]
    task = make(graphs=graphs, queries=["path"], max_path=5)
    batch = next(task.batches("train", 64, torch.Generator().manual_seed(3)))
    hops = Counter(check_problem(task, batch, b)[1] for b in range(64))
    assert set(hops) == {1, 2, 3, 4, 5}


@pytest.mark.parametrize("name", ["karate_club", "florentine_families"])
def test_real_graphs_are_the_ones_networkx_ships(name):
    task = make(graphs=[name], queries=["link"])
    batch = next(task.batches("train", 3, torch.Generator().manual_seed(4)))
    real = getattr(nx, f"{name}_graph")()
    for b in range(3):
        check_problem(task, batch, b)
        triples = decode(task, batch, b)["triples"]
        assert len(triples) == real.number_of_edges()
        assert nx.is_isomorphic(nx.Graph([(u, v) for u, _, v in triples]), real)


def canonical(task: KnowledgeTask, batch, b: int) -> tuple:
    p = decode(task, batch, b)
    edges = tuple(sorted((min(u, v), r, max(u, v)) for u, r, v in p["triples"]))
    return edges, tuple(p["queries"])


@pytest.mark.parametrize("disjoint", [True, False])
def test_held_out_problems_are_never_trained_on(disjoint):
    # One-edge trees over 6 node names, one relation: 30 problems, overlap certain.
    options = dict(graphs=["tree"], queries=["link"], nodes=6, min_nodes=2, max_nodes=2)
    task = make(**options, relations=1, eval_size=64, disjoint_eval=disjoint)
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
    task = make(eval_size=40)
    first = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    again = list(task.batches("eval", 16, torch.Generator().manual_seed(5)))
    assert [b.inputs.shape[1] for b in first] == [16, 16, 8]
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(first, again, strict=True))
    for batch in first:
        for b in range(batch.inputs.shape[1]):
            check_problem(task, batch, b)
    a = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 10))
    b = list(itertools.islice(task.batches("train", 4, torch.Generator().manual_seed(2)), 10))
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))


def test_curriculum_grows_graphs_hops_and_paths():
    options = dict(graphs=["tree"], min_nodes=4, max_nodes=12, min_hops=1, max_hops=3)
    task = make(**options, max_path=4, curriculum_steps=4)
    stream = task.batches("train", 48, torch.Generator().manual_seed(6))
    for index, batch in enumerate(itertools.islice(stream, 6)):
        grow = min(index, 4) / 4
        problems = [check_problem(task, batch, b) for b in range(48)]
        sizes = [len(decode(task, batch, b)["triples"]) + 1 for b in range(48)]
        assert max(sizes) <= 4 + round(8 * grow)
        assert max(d for kind, d in problems if kind == "path") <= 1 + round(3 * grow)
        assert max(d for kind, d in problems if kind == "multihop") <= 1 + round(2 * grow)
        if index == 5:
            assert max(sizes) > 9


def test_first_query_steps_ask_the_first_kind_alone():
    task = make(queries=["link", "path", "multihop"], first_query_steps=3, eval_size=64)
    stream = task.batches("train", 32, torch.Generator().manual_seed(9))
    kinds = [
        Counter(check_problem(task, batch, b)[0] for b in range(32))
        for batch in itertools.islice(stream, 5)
    ]
    assert all(set(k) == {"link"} for k in kinds[:3])
    assert all(set(k) == set(QUERIES) for k in kinds[3:])
    held = Counter(
        check_problem(task, batch, b)[0]
        for batch in task.batches("eval", 32, torch.Generator().manual_seed(9))
        for b in range(batch.inputs.shape[1])
    )
    assert set(held) == set(QUERIES)  # the held-out problems ask every kind


def test_metrics_on_known_outputs():
    task = make(queries=["path", "link"])
    batch = next(task.batches("train", 16, torch.Generator().manual_seed(7)))
    kinds = [decode(task, batch, b)["kind"] for b in range(16)]
    perfect = torch.nn.functional.one_hot(batch.targets[..., 0], task.output_size).float()
    raw = task.metrics(perfect, batch)
    assert set(raw) == {"accuracy", "accuracy_link", "accuracy_path", "path_accuracy"}
    metrics = combine_metrics([(raw, 16)])
    assert set(metrics) == set(raw)
    assert all(v == 1.0 for v in metrics.values())
    wrong = perfect.clone()
    wrong[~batch.mask.bool()] = torch.roll(wrong[~batch.mask.bool()], 1, -1)  # not scored
    b = kinds.index("path")
    t = int(batch.mask[:, b].nonzero()[0])
    wrong[t, b] = torch.roll(wrong[t, b], 1)  # the first node of one path
    steps = batch.mask[:, b].sum().item()
    paths = kinds.count("path")
    raw = task.metrics(wrong, batch)
    assert raw["path_accuracy"] == (paths - 1, paths)  # a Ratio: total, count
    metrics = combine_metrics([(raw, 16)])
    assert metrics["path_accuracy"] == pytest.approx(1 - 1 / paths)
    assert metrics["accuracy_path"] == pytest.approx(1 - 1 / steps / paths)
    assert metrics["accuracy"] == pytest.approx(1 - 1 / steps / 16)
    assert metrics["accuracy_link"] == 1.0


def test_loss_is_cross_entropy_at_the_scored_steps():
    task = make()
    batch = next(task.batches("train", 6, torch.Generator().manual_seed(8)))
    logits = torch.randn(*batch.mask.shape, task.output_size)
    terms = [
        -torch.log_softmax(logits[t, b], -1)[batch.targets[t, b, 0]]
        for t, b in batch.mask.nonzero().tolist()
    ]
    assert torch.allclose(task.loss(logits, batch), torch.stack(terms).mean(), atol=1e-6)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"graphs": []}, "graphs is empty"),
        ({"queries": ["link", "link"]}, "twice"),
        ({"queries": ["teleport"]}, "multihop"),
        ({"graphs": ["les_miserables"]}, "77 nodes"),
        ({"max_nodes": 50}, "max_nodes"),
        ({"min_hops": 4, "max_hops": 2}, "min_hops"),
        ({"edges_per_node": 0}, "greater than 0"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(KnowledgeTask.Config, options, "task", "knowledge")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    out = tmp_path / "run"
    args = [
        "run", "--memory", memory, "--controller", "lstm", "--task", "knowledge",
        "--steps", "2", "--no-progress", "--device", "cpu", "--out", str(out),
        "--set", "memory.slots=8", "--set", "controller.hidden_size=16",
        "--set", "train.eval_every=0", "--set", "train.checkpoint_every=0",
        "--set", "train.batch_size=4", "--set", "train.log_every=1",
        "--set", "task.nodes=16", "--set", "task.max_nodes=8", "--set", "task.max_path=3",
        "--set", 'task.graphs=["random", "family"]', "--set", "task.eval_size=8",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 2
    assert 0.0 <= summary["eval"]["accuracy"] <= 1.0
