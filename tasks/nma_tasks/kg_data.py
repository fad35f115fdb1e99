"""Knowledge graphs for link prediction: the shipped Kinships, Nations and UMLS splits,
parsing and indexing, inverse relations, neighbourhood sampling and filtered ranks.

A split file holds one triple a line, ``head<TAB>relation<TAB>tail``. Entities and
relations are indexed in sorted order of their names over all three splits. With
``R`` relations, relation ``r + R`` is the inverse of relation ``r``: the triple
``(h, r, t)`` read backwards is ``(t, r + R, h)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import torch
from torch import Tensor

Dataset = Literal["kinships", "nations", "umls"]
DATASETS: tuple[Dataset, ...] = ("kinships", "nations", "umls")
FileSplit = Literal["train", "valid", "test"]
SPLITS: tuple[FileSplit, ...] = ("train", "valid", "test")

Triple = tuple[str, str, str]


def parse_triples(text: str, source: str = "<text>") -> list[Triple]:
    """The triples of a split file's ``text``; blank lines are skipped.

    Raises:
        ValueError: a line without exactly three tab-separated fields (names the line).
    """
    triples: list[Triple] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3 or not all(fields):
            raise ValueError(f"{source}:{number}: expected head<TAB>relation<TAB>tail: {line!r}")
        triples.append((fields[0], fields[1], fields[2]))
    return triples


@dataclass(frozen=True, eq=False)
class KnowledgeGraph:
    """A graph's names and its splits as index triples.

    Attributes:
        name: the data set's name.
        entities: entity names; an entity's index is its position.
        relations: relation names (without inverses); likewise.
        splits: ``(N, 3)`` long tensors of ``(head, relation, tail)`` indices per split.
    """

    name: str
    entities: tuple[str, ...]
    relations: tuple[str, ...]
    splits: dict[str, Tensor]

    @property
    def num_entities(self) -> int:
        """``E``."""
        return len(self.entities)

    @property
    def num_relations(self) -> int:
        """``R``, not counting the inverse relations."""
        return len(self.relations)


def index_graph(name: str, raw: dict[str, list[Triple]]) -> KnowledgeGraph:
    """Index the named triples of every split in ``raw`` (sorted names over all splits)."""
    entities = sorted({x for triples in raw.values() for h, _, t in triples for x in (h, t)})
    relations = sorted({r for triples in raw.values() for _, r, _ in triples})
    entity_id = {e: i for i, e in enumerate(entities)}
    relation_id = {r: i for i, r in enumerate(relations)}
    splits = {
        split: torch.tensor(
            [[entity_id[h], relation_id[r], entity_id[t]] for h, r, t in triples],
            dtype=torch.long,
        ).reshape(-1, 3)
        for split, triples in raw.items()
    }
    return KnowledgeGraph(name, tuple(entities), tuple(relations), splits)


def read_split(dataset: str, split: str) -> str:
    """The text of a shipped split file (``importlib.resources``: works from a wheel)."""
    root = resources.files("nma_tasks") / "data" / "kg" / dataset
    return (root / f"{split}.txt").read_text(encoding="utf-8")


@cache
def load_graph(dataset: str) -> KnowledgeGraph:
    """The shipped data set ``dataset`` (one of :data:`DATASETS`), parsed once."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose from {', '.join(DATASETS)}")
    raw = {s: parse_triples(read_split(dataset, s), f"{dataset}/{s}.txt") for s in SPLITS}
    return index_graph(dataset, raw)


def with_inverses(triples: Tensor, num_relations: int) -> Tensor:
    """``(2N, 3)``: the ``N`` triples, then each read backwards with its inverse relation.

    Row ``i`` and row ``i + N`` come from the same triple ``i``.
    """
    h, r, t = triples.unbind(dim=1)
    backwards = torch.stack([t, r + num_relations, h], dim=1)
    return torch.cat([triples, backwards])


def known_answers(graph: KnowledgeGraph) -> Tensor:
    """``(E, 2R, E)`` booleans: ``[h, r, t]`` is true when ``(h, r, t)`` is a known triple
    of any split, in either direction (the filter of the filtered setting)."""
    e, r = graph.num_entities, graph.num_relations
    known = torch.zeros(e, 2 * r, e, dtype=torch.bool)
    for triples in graph.splits.values():
        both = with_inverses(triples, r)
        known[both[:, 0], both[:, 1], both[:, 2]] = True
    return known


def filtered_ranks(scores: Tensor, answers: Tensor, known: Tensor) -> Tensor:
    """Filtered ranks ``(Q,)`` (float) of the true ``answers`` ``(Q,)`` under ``scores``
    ``(Q, E)``, where ``known`` ``(Q, E)`` marks every known true answer of each query.

    Every other known true answer is removed; the rest are ranked by score, highest
    first. Ties take the mean rank of the tie: ``1 + #higher + #equal / 2``, counting
    the remaining entities with a higher or an equal score (the mean of the optimistic
    and the pessimistic rank, i.e. the expected rank under a random order of the tie).
    """
    true_score = scores.gather(1, answers.unsqueeze(1))
    competing = ~known
    competing = competing.scatter(1, answers.unsqueeze(1), False)
    higher = ((scores > true_score) & competing).sum(dim=1)
    equal = ((scores == true_score) & competing).sum(dim=1)
    return 1.0 + higher.double() + equal.double() / 2.0


class Neighbourhoods:
    """The directed training edges out of each entity, for sampling query contexts.

    ``edges`` ``(2N, 3)`` is :func:`with_inverses` of the training triples, so every
    training triple that involves an entity ``x`` (as head or tail) is an edge out of
    ``x``; edges ``i`` and ``i + N`` share the triple ``i mod N``.
    """

    def __init__(self, train: Tensor, num_entities: int, num_relations: int) -> None:
        self.triples = len(train)
        self.edges = with_inverses(train, num_relations)
        heads = self.edges[:, 0]
        self.degree = torch.bincount(heads, minlength=num_entities)
        width = int(self.degree.max()) if len(heads) else 0
        order = torch.argsort(heads, stable=True)
        start = torch.cumsum(self.degree, 0) - self.degree
        column = torch.arange(len(heads)) - start[heads[order]]
        self.by_head = torch.full((num_entities, max(width, 1)), -1, dtype=torch.long)
        self.by_head[heads[order], column] = order

    def sample(
        self, heads: Tensor, exclude: Tensor, size: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor]:
        """Up to ``size`` edges out of each of ``heads`` ``(B,)``, drawn without
        replacement in random order, never one of triple ``exclude`` (``(B,)``, -1: none).

        Returns edge ids ``(B, size)`` (valid ones first, -1 after) and the counts ``(B,)``.
        """
        candidates = self.by_head[heads]  # (B, D)
        triple = candidates.remainder(max(self.triples, 1))
        invalid = (candidates < 0) | (triple == exclude.unsqueeze(1))
        keys = torch.rand(candidates.shape, generator=generator)
        keys = keys.masked_fill(invalid, 2.0)
        order = torch.argsort(keys, dim=1, stable=True)[:, :size]
        chosen = candidates.gather(1, order)
        valid = ~invalid.gather(1, order)
        chosen = chosen.masked_fill(~valid, -1)
        if chosen.shape[1] < size:
            pad = torch.full((len(heads), size - chosen.shape[1]), -1, dtype=torch.long)
            chosen = torch.cat([chosen, pad], dim=1)
        return chosen, valid.sum(dim=1)
