"""Link prediction on real knowledge graphs (Kinships, Nations, UMLS), filtered ranking."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Ratio, Split, Task
from nma_tasks.kg_data import (
    Dataset,
    KnowledgeGraph,
    Neighbourhoods,
    filtered_ranks,
    known_answers,
    load_graph,
    with_inverses,
)

ANSWER, HEAD, RELATION = 0, 1, 2
"""Channels of the targets at the query step: the true answer, the query's head and
relation (the metrics look up the other known answers of ``(head, relation)``)."""
HITS = (1, 3, 10)
EvalSplit = Literal["valid", "test"]


def context_limit(index: int, steps: int, size: int) -> int:
    """The most context triples of training batch ``index`` under a curriculum of
    ``steps`` batches: from ``min(1, size)`` at batch 0 rising linearly to ``size``."""
    low = min(1, size)
    if steps <= 0 or index >= steps:
        return size
    return low + (size - low) * index // steps


class KgCompletionTask(Task):
    """Link prediction on a real knowledge graph: given ``(h, r, ?)``, rank every entity.

    Data: ``dataset`` (``kinships``, ``nations`` or ``umls``) with its standard
    train / valid / test split (ConvE's, shipped with ``nma-tasks``). With ``E``
    entities and ``R`` relations, relation ``r + R`` is the inverse of ``r``; a query
    ``(?, r, t)`` is asked as ``(t, r + R, ?)``, so every triple ``(h, r, t)`` gives two
    queries, ``(h, r, ?)`` with answer ``t`` and ``(t, r + R, ?)`` with answer ``h``.

    Each example is one query about a head ``h``, preceded by a context of up to
    ``context_size`` training triples that involve ``h`` (as head or as tail), drawn
    without replacement in random order from the given generator, each written with
    ``h`` first (``(x, r, h)`` is shown as ``(h, r + R, x)``). A training query's
    context never holds the query's own triple (in either direction); an evaluation
    query's triple is not a training triple, so cannot appear.

    Encoding, ``2E + 2R + 1`` input channels in three one-hot blocks and a flag: head
    entity ``[0, E)``, relation (inverses included) ``[E, E + 2R)``, tail entity
    ``[E + 2R, 2E + 2R)``, query flag ``2E + 2R``. For a query with ``k`` context
    triples in a batch whose largest context is ``K`` (``T = K + 1`` steps):

    * steps ``0..k-1``: one context triple each (head, relation and tail blocks);
    * step ``k`` (the query step): the head and relation blocks and the query flag;
    * steps ``k+1..K``: all-zero padding (not scored).

    Output: logits over the ``E`` entities, read at the query step only. Targets
    ``(T, B, 3)`` integers, set at the query step: the true answer, the query's head
    and its relation (the other steps hold 0). Mask ``(T, B)``: 1 at the query step.

    Training: every training triple in both directions, in a random order drawn
    afresh each epoch (``2N`` queries), batch after batch. Loss: cross-entropy of the
    query step's logits against the true answer (unfiltered); with ``label_smoothing
    = ε``, against ``(1 - ε)`` on the true answer plus ``ε / E`` on every entity
    (Szegedy et al. 2016, "Rethinking the Inception Architecture", section 7), on
    held-out batches too, so the held-out loss stays comparable to the training loss.

    Evaluation (split ``eval_split``, ``valid`` or ``test``): the split's first
    ``eval_size`` triples (0: all), both directions, each ranked in the standard
    filtered setting: every other entity ``e`` for which ``(h, r, e)`` is a known
    triple of train ∪ valid ∪ test is removed, and the true answer is ranked among the
    rest by logit, highest first. Ties take the mean rank of the tie,
    ``1 + #higher + #equal / 2`` (the mean of the optimistic and the pessimistic
    rank), so a constant output scores the mean rank, never rank 1.

    Metrics, over all queries (:class:`nma.Ratio` values, exact across evaluation
    batches): ``mrr`` (main, higher is better), the mean of ``1 / rank``;
    ``hits_at_1``, ``hits_at_3``, ``hits_at_10``, the share of queries with
    ``rank <= k``; ``mean_rank``. Training batches report the same, filtered, on
    their training queries.

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0) shows
    at most ``1 + ⌊(context_size - 1)·i/N⌋`` context triples (shorter sequences first);
    from batch ``N`` on, ``context_size``. The held-out split always uses
    ``context_size``.
    """

    main_metric = "mrr"
    main_metric_mode = "max"

    class Config(Options):
        dataset: Dataset = Field("nations", description="Knowledge graph: kinships, nations, umls.")
        context_size: int = Field(
            16, ge=0, description="Most training triples about the query's head shown first."
        )
        eval_split: EvalSplit = Field("test", description="Held-out split to rank: valid or test.")
        eval_size: int = Field(
            0, ge=0, description="Held-out triples ranked, both ways (0: all; N: the first N)."
        )
        label_smoothing: float = Field(
            0.0,
            ge=0,
            lt=1,
            description=(
                "Share of the loss's target spread evenly over all entities (label "
                "smoothing, Szegedy et al. 2016, section 7; ConvE uses 0.1)."
            ),
        )
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the most context triples grows linearly "
            "from 1 to context_size (0: no curriculum).",
        )

        @model_validator(mode="after")
        def _check(self) -> KgCompletionTask.Config:
            available = len(load_graph(self.dataset).splits[self.eval_split])
            if self.eval_size > available:
                raise ValueError(
                    f"eval_size ({self.eval_size}) exceeds the {available} {self.eval_split} "
                    f"triples of {self.dataset}; use 0 for all of them"
                )
            return self

    def __init__(self, config: Config, graph: KnowledgeGraph | None = None) -> None:
        super().__init__(config)
        self.graph = graph if graph is not None else load_graph(config.dataset)
        e, r = self.graph.num_entities, self.graph.num_relations
        self.relation_offset, self.tail_offset = e, e + 2 * r
        self.query_flag = 2 * e + 2 * r
        self.input_size = self.query_flag + 1
        self.output_size = e
        self.known = known_answers(self.graph)
        self._known_on: dict[torch.device, Tensor] = {}
        self.neighbourhoods = Neighbourhoods(self.graph.splits["train"], e, r)
        self.train_queries = self.neighbourhoods.edges
        held_out = self.graph.splits[config.eval_split]
        if config.eval_size:
            held_out = held_out[: config.eval_size]
        self.eval_queries = with_inverses(held_out, r)

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or every held-out query once, in batches."""
        c = self.config
        if split == "train":
            yield from self._train_batches(batch_size, generator)
        elif split == "eval":
            for start in range(0, len(self.eval_queries), batch_size):
                queries = self.eval_queries[start : start + batch_size]
                none = torch.full((len(queries),), -1, dtype=torch.long)
                yield self.encode(queries, none, c.context_size, generator)
        else:
            raise ValueError(f"unknown split {split!r}")

    def _train_batches(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        c = self.config
        total = len(self.train_queries)
        if total == 0:
            raise ValueError(f"{self.graph.name} has no training triples")
        pending = torch.empty(0, dtype=torch.long)
        index = 0
        while True:
            while len(pending) < batch_size:
                pending = torch.cat([pending, torch.randperm(total, generator=generator)])
            chosen, pending = pending[:batch_size], pending[batch_size:]
            own_triple = chosen.remainder(self.neighbourhoods.triples)
            size = context_limit(index, c.curriculum_steps, c.context_size)
            yield self.encode(self.train_queries[chosen], own_triple, size, generator)
            index += 1

    def encode(
        self, queries: Tensor, exclude: Tensor, context_size: int, generator: torch.Generator
    ) -> Batch:
        """A batch of ``queries`` ``(B, 3)`` (head, relation, answer), each after up to
        ``context_size`` training triples about its head, never one of triple
        ``exclude`` ``(B,)`` (-1: none)."""
        size = len(queries)
        heads, relations, answers = queries.unbind(dim=1)
        context, counts = self.neighbourhoods.sample(heads, exclude, context_size, generator)
        steps = int(counts.max()) + 1 if size else 1
        inputs = torch.zeros(steps, size, self.input_size)
        filled = (context[:, : steps - 1] >= 0).nonzero()  # (n, 2): sequence, step
        b, t = filled[:, 0], filled[:, 1]
        triples = self.neighbourhoods.edges[context[b, t]]
        inputs[t, b, triples[:, 0]] = 1.0
        inputs[t, b, self.relation_offset + triples[:, 1]] = 1.0
        inputs[t, b, self.tail_offset + triples[:, 2]] = 1.0
        columns = torch.arange(size)
        inputs[counts, columns, heads] = 1.0
        inputs[counts, columns, self.relation_offset + relations] = 1.0
        inputs[counts, columns, self.query_flag] = 1.0
        targets = torch.zeros(steps, size, 3, dtype=torch.long)
        targets[counts, columns] = queries[:, [2, 0, 1]]
        mask = torch.zeros(steps, size)
        mask[counts, columns] = 1.0
        return Batch(inputs, targets, mask)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy of the query steps' logits against the true answers, smoothed
        by ``label_smoothing``."""
        scored = batch.mask.bool()
        if not scored.any():
            return outputs.sum() * 0.0
        return F.cross_entropy(
            outputs[scored].float(),
            batch.targets[scored][:, ANSWER],
            label_smoothing=self.config.label_smoothing,
        )

    def ranks(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Filtered ranks ``(Q,)`` of the batch's queries (see the class docstring)."""
        scored = batch.mask.bool()
        scores = outputs[scored].float()
        targets = batch.targets[scored]
        known = self._known(outputs.device)[targets[:, HEAD], targets[:, RELATION]]
        return filtered_ranks(scores, targets[:, ANSWER], known)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float | Ratio]:
        """``mrr``, ``hits_at_{1,3,10}`` and ``mean_rank`` as sums and counts of queries."""
        ranks = self.ranks(outputs, batch)
        count = float(len(ranks))
        metrics: dict[str, float | Ratio] = {"mrr": Ratio(float(ranks.reciprocal().sum()), count)}
        for k in HITS:
            metrics[f"hits_at_{k}"] = Ratio(float((ranks <= k).sum()), count)
        metrics["mean_rank"] = Ratio(float(ranks.sum()), count)
        return metrics

    def _known(self, device: torch.device) -> Tensor:
        if device not in self._known_on:
            self._known_on[device] = self.known.to(device)
        return self._known_on[device]
