"""The kg-completion task against its definition: every sequence decoded from the
documented layout and checked against the triples, filtered ranks through the real
evaluation loop, loss, curriculum, options and the CLI."""

from __future__ import annotations

import itertools
import math
from collections import Counter

import pytest
import torch
from torch import Tensor, nn

from nma import UsageError
from nma.config import validate_options
from nma.task import combine_metrics
from nma.trainer import evaluate
from nma_tasks.kg_completion import KgCompletionTask
from nma_tasks.kg_data import index_graph
from tests.tasks.sequence_helpers import run_task_cli
from tests.tasks.test_kg_completion_data import TINY, raw_triples

Triple = tuple[int, int, int]


def make(graph=None, **options) -> KgCompletionTask:
    return KgCompletionTask(KgCompletionTask.Config(**options), graph=graph)


def directed(task: KgCompletionTask, split: str) -> list[Triple]:
    """The split's triples, then each read backwards with relation ``r + R``."""
    r_count = task.graph.num_relations
    triples = [tuple(t) for t in task.graph.splits[split].tolist()]
    return triples + [(t, r + r_count, h) for h, r, t in triples]  # type: ignore[misc]


def decode(task: KgCompletionTask, batch, b: int) -> tuple[list[Triple], Triple]:
    """Sequence ``b``'s context triples and its query (head, relation, answer), read off
    the documented channels; checks the layout on the way."""
    e, r2 = task.graph.num_entities, 2 * task.graph.num_relations
    assert batch.inputs.shape[-1] == 2 * e + r2 + 1
    x = batch.inputs[:, b]
    length = int((x.sum(-1) > 0).sum())
    assert torch.all(x[length:] == 0) and set(x.unique().tolist()) <= {0.0, 1.0}

    def block(step: Tensor, start: int, width: int) -> int | None:
        part = step[start : start + width]
        assert part.sum() <= 1
        return int(part.argmax()) if part.sum() else None

    context = []
    for t in range(length - 1):
        step = x[t]
        assert step[-1] == 0
        triple = (block(step, 0, e), block(step, e, r2), block(step, e + r2, e))
        assert None not in triple
        context.append(triple)
    query = x[length - 1]
    assert query[-1] == 1 and block(query, e + r2, e) is None
    head, relation = block(query, 0, e), block(query, e, r2)
    mask = batch.mask[:, b]
    assert mask.sum() == 1 and mask[length - 1] == 1
    answer, *rest = batch.targets[length - 1, b].tolist()
    assert rest == [head, relation]
    others = torch.cat([batch.targets[: length - 1, b], batch.targets[length:, b]])
    assert torch.all(others == 0)
    return context, (head, relation, answer)  # type: ignore[return-value]


def out_degree(edges: list[Triple]) -> Counter:
    return Counter(h for h, _, _ in edges)


def test_training_sequences_match_the_definition():
    task = make(dataset="nations", context_size=40)
    edges = directed(task, "train")
    known, degree = set(edges), out_degree(edges)
    n = len(edges) // 2
    stream = task.batches("train", 64, torch.Generator().manual_seed(0))
    for batch in itertools.islice(stream, 3):
        assert batch.inputs.shape[0] == 41  # every nations entity has > 40 triples
        for b in range(64):
            context, query = decode(task, batch, b)
            h, r, t = query
            assert query in known
            own = edges.index(query) % n
            twins = {edges[own], edges[own + n]}  # the triple, both ways
            assert len(set(context)) == len(context)
            assert all(c in known and c[0] == h and c not in twins for c in context)
            assert len(context) == min(40, degree[h] - sum(x[0] == h for x in twins))


def test_a_self_loop_query_never_sees_its_triple_either_way():
    task = make(graph=index_graph("tiny", TINY), context_size=10)
    stream = task.batches("train", 10, torch.Generator().manual_seed(1))
    seen = 0
    for batch in itertools.islice(stream, 20):
        for b in range(10):
            context, query = decode(task, batch, b)
            if query[::2] == (0, 0):  # (a, q, a) or (a, q^-1, a)
                seen += 1
                assert set(context) == {(0, 0, 1), (0, 0, 2)}  # (a, p, b), (a, p, c)
    assert seen > 10


def test_training_covers_every_triple_both_ways_once_per_epoch():
    task = make(dataset="nations", context_size=0)
    edges = directed(task, "train")
    stream = task.batches("train", 50, torch.Generator().manual_seed(2))
    queries = [decode(task, batch, b)[1] for batch in itertools.islice(stream, 128)
               for b in range(50)]  # fmt: skip
    epoch = len(edges)  # 3184: batches straddle the epoch boundary
    assert Counter(queries[:epoch]) == Counter(edges)
    assert Counter(queries[epoch : 2 * epoch]) == Counter(edges)
    assert queries[:epoch] != queries[epoch : 2 * epoch]  # a fresh order


def test_eval_ranks_the_first_triples_both_ways_with_training_contexts():
    task = make(dataset="nations", context_size=20, eval_split="valid", eval_size=5)
    train = directed(task, "train")
    known, degree = set(train), out_degree(train)
    first = [tuple(t) for t in task.graph.splits["valid"][:5].tolist()]
    r_count = task.graph.num_relations
    expected = first + [(t, r + r_count, h) for h, r, t in first]
    batches = list(task.batches("eval", 4, torch.Generator().manual_seed(0)))
    assert [b.inputs.shape[1] for b in batches] == [4, 4, 2]
    queries = []
    for batch in batches:
        for b in range(batch.inputs.shape[1]):
            context, query = decode(task, batch, b)
            queries.append(query)
            assert all(c in known and c[0] == query[0] for c in context)
            assert len(set(context)) == len(context) == min(20, degree[query[0]])
    assert queries == expected
    again = list(task.batches("eval", 4, torch.Generator().manual_seed(0)))
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(batches, again, strict=True))
    everything = sum(b.inputs.shape[1] for b in make().batches("eval", 64, torch.Generator()))
    assert everything == 2 * 201


def test_train_stream_is_seeded():
    task = make(dataset="umls", context_size=5)
    a = list(itertools.islice(task.batches("train", 8, torch.Generator().manual_seed(4)), 5))
    b = list(itertools.islice(task.batches("train", 8, torch.Generator().manual_seed(4)), 5))
    c = next(task.batches("train", 8, torch.Generator().manual_seed(5)))
    assert all(torch.equal(x.inputs, y.inputs) for x, y in zip(a, b, strict=True))
    assert all(torch.equal(x.targets, y.targets) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].targets, c.targets)


def test_curriculum_grows_the_context_linearly():
    task = make(dataset="nations", context_size=10, curriculum_steps=5)
    stream = task.batches("train", 16, torch.Generator().manual_seed(3))
    for i, batch in enumerate(itertools.islice(stream, 7)):
        lengths = {len(decode(task, batch, b)[0]) for b in range(16)}
        assert lengths == {1 + 9 * i // 5 if i < 5 else 10}  # nations degrees all exceed 10
    assert make().config.curriculum_steps == 0


def test_loss_is_cross_entropy_at_the_query_step():
    task = make(dataset="nations", context_size=3)
    batch = next(task.batches("train", 5, torch.Generator().manual_seed(0)))
    logits = torch.randn(*batch.mask.shape, task.output_size, generator=torch.Generator())
    terms = []
    for t, b in batch.mask.nonzero().tolist():
        row = logits[t, b].double()
        answer = int(batch.targets[t, b, 0])
        terms.append(math.log(row.exp().sum()) - float(row[answer]))
    assert abs(task.loss(logits, batch).item() - sum(terms) / len(terms)) < 1e-5


def test_label_smoothing_mixes_in_the_uniform_target():
    task = make(dataset="nations", context_size=3, label_smoothing=0.2)
    batch = next(task.batches("train", 5, torch.Generator().manual_seed(0)))
    logits = torch.randn(*batch.mask.shape, task.output_size, generator=torch.Generator())
    terms = []
    for t, b in batch.mask.nonzero().tolist():
        log_p = torch.log_softmax(logits[t, b].double(), dim=0).tolist()
        answer = int(batch.targets[t, b, 0])
        # target: 0.8 on the answer plus 0.2 / E on each of the E entities
        terms.append(-0.8 * log_p[answer] - 0.2 * sum(log_p) / len(log_p))
    assert abs(task.loss(logits, batch).item() - sum(terms) / len(terms)) < 1e-5


def test_metrics_of_hand_made_outputs_on_a_tiny_graph():
    graph = index_graph("tiny", TINY)
    task = make(graph=graph, context_size=2)
    true = {}  # (h, r) -> every known answer, re-derived from the named triples
    names = [*graph.relations, *(r + "~" for r in graph.relations)]
    for triples in TINY.values():
        for h, r, t in triples:
            true.setdefault((h, r), set()).add(t)
            true.setdefault((t, r + "~"), set()).add(h)
    (batch,) = task.batches("eval", 10, torch.Generator().manual_seed(0))
    outputs = torch.zeros(*batch.mask.shape, 5)
    above = [1, 3, 0, 2]  # competitors placed above the answer: ranks 2, 4, 1, 3
    for b, n in enumerate(above):
        t = int(batch.mask[:, b].argmax())
        answer, head, relation = batch.targets[t, b].tolist()
        answers = {graph.entities.index(x) for x in true[graph.entities[head], names[relation]]}
        competitors = [e for e in range(5) if e not in answers]
        outputs[t, b, sorted(answers)] = 5.0  # other true answers on top: filtered out
        outputs[t, b, answer] = 1.0
        outputs[t, b, competitors[:n]] = 2.0
    metrics = combine_metrics([(task.metrics(outputs, batch), 4)])
    assert metrics == pytest.approx({
        "mrr": (1 / 2 + 1 / 4 + 1 + 1 / 3) / 4, "hits_at_1": 0.25, "hits_at_3": 0.75,
        "hits_at_10": 1.0, "mean_rank": 2.5,
    })  # fmt: skip


class Oracle(nn.Module):
    """Reads the query step; puts ``value`` on every known answer of (head, relation)
    (from ``answers``), 0 elsewhere."""

    def __init__(self, task: KgCompletionTask, answers: dict, value: float) -> None:
        super().__init__()
        self.e, self.r2 = task.graph.num_entities, 2 * task.graph.num_relations
        self.answers, self.value = answers, value

    def forward(self, inputs: Tensor) -> tuple[Tensor, None]:
        steps, size, _ = inputs.shape
        out = torch.zeros(steps, size, self.e)
        for t, b in (inputs[..., -1] == 1).nonzero().tolist():
            head = int(inputs[t, b, : self.e].argmax())
            relation = int(inputs[t, b, self.e : self.e + self.r2].argmax())
            out[t, b, sorted(self.answers.get((head, relation), ()))] = self.value
        return out, None


def answer_sets(task: KgCompletionTask) -> dict:
    """``(h, r) -> answers`` over every split, both ways, from the raw files' names."""
    entity = {name: i for i, name in enumerate(task.graph.entities)}
    relation = {name: i for i, name in enumerate(task.graph.relations)}
    r_count = len(relation)
    sets: dict = {}
    for split in ("train", "valid", "test"):
        for h, r, t in raw_triples(task.config.dataset, split):
            sets.setdefault((entity[h], relation[r]), set()).add(entity[t])
            sets.setdefault((entity[t], relation[r] + r_count), set()).add(entity[h])
    return sets


def test_an_oracle_scores_one_through_the_real_evaluation_loop():
    task = make(dataset="nations", context_size=4)
    metrics = evaluate(Oracle(task, answer_sets(task), 10.0), task, 7, torch.device("cpu"))
    for name in ("mrr", "hits_at_1", "hits_at_3", "hits_at_10", "mean_rank"):
        assert metrics[name] == 1.0, name
    assert metrics["loss"] > 0  # several true answers share the top logit


def test_a_constant_model_gets_the_mean_rank_of_the_unfiltered_entities():
    task = make(dataset="kinships", context_size=2, eval_split="valid", eval_size=100)
    sets = answer_sets(task)
    queries = directed(task, "valid")[:100] + directed(task, "valid")[1068:1168]
    ranks = [1 + (104 - len(sets[h, r])) / 2 for h, r, _ in queries]  # a tie of the unfiltered
    metrics = evaluate(Oracle(task, {}, 0.0), task, 64, torch.device("cpu"))
    assert metrics["mean_rank"] == pytest.approx(sum(ranks) / 200)
    assert metrics["mrr"] == pytest.approx(sum(1 / x for x in ranks) / 200)
    assert metrics["hits_at_10"] == pytest.approx(sum(x <= 10 for x in ranks) / 200)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset": "freebase"}, "kinships"),
        ({"eval_split": "train"}, "valid"),
        ({"eval_size": 202}, r"eval_size \(202\) exceeds the 201 test triples of nations"),
        ({"dataset": "umls", "eval_split": "valid", "eval_size": 653}, "652 valid triples"),
        ({"context_size": -1}, "greater than or equal to 0"),
        ({"curriculum_steps": -2}, "greater than or equal to 0"),
        ({"context": 3}, "context_size"),
        ({"label_smoothing": 1.0}, "less than 1"),
    ],
)
def test_bad_options_are_usage_errors(options, message):
    with pytest.raises(UsageError, match=message):
        validate_options(KgCompletionTask.Config, options, "task", "kg-completion")


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_runs_from_the_cli(memory, tmp_path):
    options = {"dataset": "nations", "context_size": 3, "eval_size": 3}
    summary = run_task_cli("kg-completion", memory, tmp_path / "run", options)
    assert summary["step"] == 2
    assert 0 < summary["eval"]["mrr"] <= 1 and 1 <= summary["eval"]["mean_rank"] <= 14
