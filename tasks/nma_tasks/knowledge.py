"""Knowledge-graph reasoning: link lookup, multi-hop relations and shortest paths."""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import partial
from typing import Literal

from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Ratio
from nma_tasks import symbolic
from nma_tasks.knowledge_graphs import (
    FAMILY_BASE,
    FAMILY_DERIVED,
    SOURCES,
    Graph,
    Source,
    base_targets,
    family_relations,
    make_graph,
    real_size,
    unique_shortest_paths,
)
from nma_tasks.symbolic import Problem

Query = Literal["link", "multihop", "path"]
QUERIES: tuple[Query, ...] = ("link", "multihop", "path")


@dataclass(frozen=True)
class Question:
    """A query in local node ids: its steps as (source, relation, target) blocks (any may
    be ``None``) and the answers (node ids; ``None`` stands for the end token)."""

    kind: Query
    steps: tuple[tuple[int | None, int | None, int | None], ...]
    answers: tuple[int | None, ...]


class KnowledgeTask(symbolic.GeneratedTask):
    """Reason over a knowledge graph given as (source, relation, target) triples.

    Graphs (drawn uniformly from ``graphs`` for each sequence): ``random``
    (networkx ``gnm_random_graph`` with ``round(n · edges_per_node)`` edges), ``tree``
    (``random_labeled_tree``), both with ``n`` nodes uniform in ``[min_nodes,
    max_nodes]`` and each edge labelled with one of ``relations`` symmetric relations;
    ``family``: ``n`` people, each but the first the son or daughter of one earlier
    person; and the graphs networkx ships (``karate_club``, ``florentine_families``,
    ``les_miserables``), with random symmetric labels. Node names are a random
    injective map into the ``nodes`` node symbols, drawn afresh for every problem.

    Queries (drawn uniformly from ``queries``), each with a single right answer:

    * ``link``: ``(s, r, ?)`` for a relation ``r`` that links ``s`` to exactly one node
      (a symmetric relation links both ways, whatever orientation it is listed in);
    * ``multihop``: on family graphs ``(x, r, ?)`` for a derived relation ``r``
      (parent, child, sibling, grandparent, uncle, aunt, cousin: rules in
      ``knowledge_graphs.family_relations``) that holds for exactly one person; on
      other graphs a traversal ``x, r1, ..., rh`` of ``h`` hops (uniform in
      ``[min_hops, max_hops]``), each relation leading to exactly one node, never
      revisiting one;
    * ``path``: the only shortest path between two nodes ``s`` and ``t``, 1 to
      ``max_path`` hops apart (the DNC paper's shortest-path task, Graves et al. 2016).

    Encoding, one step per triple with three one-hot blocks and two flags,
    ``2·nodes + relations + 10 + 2`` input channels: source node ``[0, nodes)``,
    relation ``[nodes, nodes + R)``, target node ``[nodes + R, 2·nodes + R)``, then the
    ``query`` and ``answer`` flags; the relation block is ``relations`` random labels,
    then son, daughter, the seven derived family relations, and ``path``.

    * the graph: one step per triple (source, relation, target) in random order;
    * the query, with the ``query`` flag: link ``(s, r, ·)``; family multi-hop
      ``(x, r, ·)``; traversal ``(x, r1, ·)`` then ``(·, r_i, ·)`` for each later hop;
      path ``(s, path, t)``;
    * answer steps, with only the ``answer`` flag set: first ``think_steps`` unscored
      ones (time to chain reads before answering, the DNC paper's planning steps),
      then one for link and multi-hop; ``max_path + 1`` for a path, scored with the
      path's nodes after ``s`` (ending with ``t``), then the end token, and not scored
      beyond;
    * steps after a shorter sequence's end are all-zero inputs (padding).

    Output: logits over ``nodes + 1`` answers (node symbols, then the end token).
    Targets ``(T, B, 2)`` integers: the answer at ``[..., 0]`` on scored steps, and the
    query kind (0 link, 1 multihop, 2 path) at ``[..., 1]``, read only by the metrics.
    Mask: 1 on the scored steps. Loss: cross-entropy at the scored steps.
    Metrics: ``accuracy`` (main: per sequence, the share of scored steps right, then
    the mean over sequences); ``accuracy_link``, ``accuracy_multihop``,
    ``accuracy_path`` (the same share over the queries of that kind) for the kinds in
    ``queries``, and ``path_accuracy``, the share of path queries answered entirely
    right (end token included): :class:`nma.Ratio` values, summed over the held-out
    split before dividing (so exact), reported only where the batch (or held-out
    split) has such a query. Curriculum: over the first
    ``curriculum_steps`` training batches the upper ends of the node, hop and path
    ranges rise linearly from their minima (paths from 1 hop); the first
    ``first_query_steps`` training batches ask only the first kind in ``queries``
    (with ``link`` first: single lookups before the multi-step queries). Held-out problems come
    from a quarter of the problem space (by hash of the named triples and query) that
    training never draws from.
    """

    class Config(Options):
        graphs: list[Source] = Field(
            default_factory=lambda: ["random", "tree", "family", "florentine_families"],
            description=f"Graph sources, mixed: {', '.join(SOURCES)}.",
        )
        queries: list[Query] = Field(
            default_factory=lambda: list(QUERIES), description="Kinds of query, mixed."
        )
        nodes: int = Field(
            40, ge=2, description="Node symbols in the vocabulary (at least the largest graph)."
        )
        min_nodes: int = Field(6, ge=2, description="Fewest nodes of a random/tree/family graph.")
        max_nodes: int = Field(12, ge=2, description="Most nodes of a random/tree/family graph.")
        edges_per_node: float = Field(
            1.25, gt=0.0, description="Edges per node of a random graph (gnm)."
        )
        relations: int = Field(3, ge=1, description="Relation labels of non-family graphs.")
        min_hops: int = Field(2, ge=1, description="Fewest hops of a traversal query.")
        max_hops: int = Field(3, ge=1, description="Most hops of a traversal query.")
        max_path: int = Field(4, ge=1, description="Most hops of a shortest-path query.")
        curriculum_steps: int = Field(
            0, ge=0, description="Training batches over which difficulty ramps up (0: off)."
        )
        first_query_steps: int = Field(
            0,
            ge=0,
            description="Training batches that ask only the first kind in queries (then all).",
        )
        think_steps: int = Field(
            0, ge=0, description="Unscored answer steps before the first scored one."
        )
        eval_size: int = Field(512, ge=1, description="Number of held-out problems.")
        disjoint_eval: bool = Field(
            True, description="Draw held-out problems from a part of the space training avoids."
        )

        @model_validator(mode="after")
        def _check(self) -> KnowledgeTask.Config:
            for name, values, valid in (
                ("graphs", self.graphs, SOURCES),
                ("queries", self.queries, QUERIES),
            ):
                if not values:
                    raise ValueError(f"{name} is empty; choose from {', '.join(valid)}")
                if len(set(values)) != len(values):
                    raise ValueError(f"{name} lists an entry twice: {values}")
            for name in ("nodes", "hops"):
                lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
                if lo > hi:
                    raise ValueError(f"min_{name} ({lo}) exceeds max_{name} ({hi})")
            if self.max_nodes > self.nodes:
                raise ValueError(f"max_nodes ({self.max_nodes}) exceeds nodes ({self.nodes})")
            for source in self.graphs:
                if source not in ("random", "tree", "family") and real_size(source) > self.nodes:
                    raise ValueError(
                        f"the {source} graph has {real_size(source)} nodes, more than nodes "
                        f"({self.nodes}); raise nodes"
                    )
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        n, k = config.nodes, config.relations
        self.son = k
        self.derived = {name: k + 2 + i for i, name in enumerate(FAMILY_DERIVED)}
        self.path_relation = k + len(FAMILY_BASE) + len(FAMILY_DERIVED)
        self.relation_count = self.path_relation + 1
        self.relation_offset, self.target_offset = n, n + self.relation_count
        self.query_flag = 2 * n + self.relation_count
        self.answer_flag = self.query_flag + 1
        self.input_size = self.answer_flag + 1
        self.end = n
        self.output_size = n + 1
        self.bucket_names = [f"accuracy_{q}" if q in config.queries else None for q in QUERIES]

    def problem_at(
        self, rng: random.Random, index: int, limits: tuple[int, ...], side: bool | None
    ) -> Problem:
        """Problem number ``index`` of its split (the index plays no part here)."""
        return self.problem(rng, limits, side)

    def limits(self, batch_index: int | None) -> tuple[int, int, int, int]:
        """(nodes, hops, path length, kinds of query) of training batch ``batch_index``,
        or of the held-out problems for ``None``; the first ``kinds`` of ``queries`` are
        asked."""
        c = self.config
        if batch_index is None:
            return (c.max_nodes, c.max_hops, c.max_path, len(c.queries))
        ramp = (batch_index, c.curriculum_steps)
        kinds = 1 if batch_index < c.first_query_steps else len(c.queries)
        return (
            symbolic.ramp(c.min_nodes, c.max_nodes, *ramp),
            symbolic.ramp(c.min_hops, c.max_hops, *ramp),
            symbolic.ramp(1, c.max_path, *ramp),
            kinds,
        )

    def problem(
        self, rng: random.Random, limits: tuple[int, int, int, int], side: bool | None
    ) -> Problem:
        """One problem on ``side`` of the held-out partition; ``limits`` is the upper end
        of the (nodes, hops, path) ranges and the number of query kinds asked."""
        c = self.config
        nodes_hi, hops_hi, path_hi, kinds = limits
        source = rng.choice(c.graphs)
        kind = rng.choice(c.queries[:kinds])
        for _ in range(1000):
            n = rng.randint(c.min_nodes, nodes_hi)
            graph = make_graph(rng, source, n, c.edges_per_node, c.relations, self.son)
            question = self.question(rng, graph, kind, hops_hi, path_hi)
            if question is not None:
                make = partial(self._encode, rng, graph, question)
                return symbolic.draw(make, side, f"knowledge ({source})")
        raise RuntimeError(f"knowledge: no {kind} query found on 1000 {source} graphs")

    def question(
        self, rng: random.Random, graph: Graph, kind: Query, hops_hi: int, path_hi: int
    ) -> Question | None:
        """A query of ``kind`` with a single answer on ``graph``, or ``None`` if it has none."""
        if kind == "link":
            links = sorted(
                (s, r, min(ts)) for (s, r), ts in base_targets(graph).items() if len(ts) == 1
            )
            if not links:
                return None
            s, r, t = rng.choice(links)
            return Question(kind, ((s, r, None),), (t,))
        if kind == "path":
            paths = unique_shortest_paths(graph, path_hi)
            if not paths:
                return None
            path = rng.choice(paths[rng.choice(sorted(paths))])
            steps = ((path[0], self.path_relation, path[-1]),)
            return Question(kind, steps, (*path[1:], None))
        if graph.family:
            return self._family_question(rng, graph)
        return self._traversal(rng, graph, rng.randint(self.config.min_hops, hops_hi))

    def _family_question(self, rng: random.Random, graph: Graph) -> Question | None:
        relations = family_relations(graph, self.son)
        options = {
            name: sorted(x for x, ys in people.items() if len(ys) == 1)
            for name, people in relations.items()
        }
        names = [name for name in FAMILY_DERIVED if options[name]]
        if not names:
            return None
        name = rng.choice(names)
        x = rng.choice(options[name])
        (y,) = relations[name][x]
        return Question("multihop", ((x, self.derived[name], None),), (y,))

    def _traversal(self, rng: random.Random, graph: Graph, hops: int) -> Question | None:
        targets = base_targets(graph)
        for _ in range(20):
            start = rng.randrange(graph.n)
            visited, relations = [start], []
            while len(relations) < hops:
                here = visited[-1]
                moves = sorted(
                    (r, min(ts))
                    for (s, r), ts in targets.items()
                    if s == here and len(ts) == 1 and min(ts) not in visited
                )
                if not moves:
                    break
                r, there = rng.choice(moves)
                relations.append(r)
                visited.append(there)
            if len(relations) == hops:
                steps = ((start, relations[0], None),)
                steps += tuple((None, r, None) for r in relations[1:])
                return Question("multihop", steps, (visited[-1],))
        return None

    def _encode(self, rng: random.Random, graph: Graph, question: Question) -> Problem:
        """Name the nodes at random and lay the problem out in steps."""
        name = rng.sample(range(self.config.nodes), graph.n)
        triples = [(name[s], r, name[t]) for s, r, t in graph.triples]
        rng.shuffle(triples)
        steps = [self._step(s, r, t) for s, r, t in triples]
        asked = tuple(
            (None if s is None else name[s], r, None if t is None else name[t])
            for s, r, t in question.steps
        )
        steps += [self._step(s, r, t, self.query_flag) for s, r, t in asked]
        answers = [self.end if a is None else name[a] for a in question.answers]
        answer_steps = self.config.max_path + 1 if question.kind == "path" else 1
        steps += [(self.answer_flag,)] * (self.config.think_steps + answer_steps)
        targets: list[int | None] = [None] * (len(steps) - answer_steps) + answers
        targets += [None] * (answer_steps - len(answers))
        listed = sorted(
            (min(s, t), r, max(s, t)) if graph.symmetric else (s, r, t) for s, r, t in triples
        )
        key = (tuple(listed), asked)
        return Problem(tuple(steps), tuple(targets), QUERIES.index(question.kind), key)

    def _step(self, s: int | None, r: int | None, t: int | None, *flags: int) -> tuple[int, ...]:
        channels = [] if s is None else [s]
        if r is not None:
            channels.append(self.relation_offset + r)
        if t is not None:
            channels.append(self.target_offset + t)
        return (*channels, *flags)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float | Ratio]:
        """``accuracy``, per-kind accuracies and ``path_accuracy`` (ratios)."""
        correct = symbolic.step_accuracy(outputs, batch)
        exact = symbolic.exact_match(outputs, batch)
        path = "path_accuracy" if "path" in self.config.queries else None
        return {
            "accuracy": float(correct.mean()),
            **symbolic.bucket_ratios(correct, batch, self.bucket_names),
            **symbolic.bucket_ratios(exact, batch, [None, None, path]),
        }
