"""Propositional inference: does a query atom follow from facts and Horn rules?"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal

from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Ratio
from nma_tasks import symbolic
from nma_tasks.symbolic import Problem

Rule = tuple[tuple[int, ...], int]  # (body atoms, head atom)
Encoding = Literal["tokens", "clauses"]


def forward_chain(facts: Sequence[int], rules: Sequence[Rule]) -> dict[int, int]:
    """Each derivable atom's proof depth: the forward-chaining round it is first derived in.

    Round 0 holds the facts; round ``k`` adds the heads of rules whose bodies were all
    known after round ``k - 1``.
    """
    depth = {atom: 0 for atom in facts}
    round_ = 0
    while True:
        round_ += 1
        new = {
            head
            for body, head in rules
            if head not in depth and all(atom in depth for atom in body)
        }
        if not new:
            return depth
        depth.update(dict.fromkeys(new, round_))


class LogicalTask(symbolic.GeneratedTask):
    """Propositional inference by forward chaining over Horn clauses.

    Each problem lists facts (atoms that are true) and Horn rules (``a -> c`` or
    ``a AND b -> c``) in random order, then asks whether a query atom follows.
    Half the problems (alternating over the stream) are provable, with a proof depth
    drawn uniformly from the depth range; the other half are built the same way but
    the base of the query's proof chain is not a fact, so nothing proves it. Distractor
    facts and rules are added without creating a shorter proof (or, for unprovable
    queries, any proof). Proof depth is the forward-chaining round in which the query
    is first derived (0: it is a fact).

    Encoding ``tokens`` (the default), one token per step, one-hot over
    ``max_atoms + 4`` input channels (atom ``i`` is channel ``i``; then ``.``, ``->``,
    ``?``, ``=``):

    * a fact ``a`` is the two steps ``a .``; a rule is its body atoms, ``->``, its head
      and ``.`` (``a b -> c .``); the clauses come in random order;
    * then ``? q =``: the query atom ``q`` and the answer step ``=``, followed by
      ``think_steps`` more ``=`` steps;
    * steps after a shorter sequence's end are all-zero inputs (padding).

    Encoding ``clauses``, one clause per step over ``2 · max_atoms + 2`` channels: a
    body block ``[0, A)`` (multi-hot: the rule's body atoms, empty for a fact), a head
    block ``[A, 2A)`` (one-hot: the rule's head, or the fact), then the ``?`` and ``=``
    flags (``A`` = ``max_atoms``). The clauses come in random order, then the query
    step (the ``?`` flag and the query atom in the head block), then ``1 +
    think_steps`` steps with only the ``=`` flag. This is the DNC paper's one triple a
    step, applied to clauses: each clause can be written to one memory slot.

    The answer is scored on the last ``=`` step only; the ``think_steps`` before it
    give a model time to chain reads through its memory before it must answer (the
    DNC paper's planning steps, Graves et al. 2016).

    Output: logits over 2 answers (0 = no, 1 = yes), scored only at the ``=`` step.
    Targets ``(T, B, 2)`` integers: the answer at ``[..., 0]`` on the scored step, and
    the problem's bucket at ``[..., 1]`` (its proof depth, or ``D + 1`` for an
    unprovable query, ``D`` being the larger of ``max_depth`` and the held-out maximum
    depth), read only by the metrics. Mask: 1 on the ``=`` step only.
    Loss: cross-entropy at the scored step. Metrics: ``accuracy`` (main: the share of
    problems answered right), ``accuracy_depth_k`` for provable queries of depth ``k``
    and ``accuracy_unprovable``; the last two are :class:`nma.Ratio` values, summed
    over the held-out split before dividing (so exact), and reported only where the
    batch (or, for evaluation, the held-out split) holds such problems.

    Each problem uses ``n`` atoms drawn at random from the ``max_atoms`` symbols,
    ``n`` uniform in ``[min_atoms, max_atoms]`` (raised to ``depth + 2`` when the proof
    needs more), ``[min_rules, max_rules]`` rules (at least the proof's; held-out
    problems ``[eval_min_rules, max_rules]``), and
    ``[min_facts, max_facts]`` facts. Curriculum: over the first ``curriculum_steps``
    training batches the upper ends of the atom, rule and depth ranges rise linearly
    from their minima; with ``min_rules = 0`` early batches are bare fact lists, which
    gets a model off chance much sooner (docs/tasks.md, logical). Held-out problems
    come from a quarter of the problem space (by hash of the order-free problem) that
    training never draws from.
    """

    class Config(Options):
        min_atoms: int = Field(6, ge=2, description="Fewest atoms one problem uses.")
        max_atoms: int = Field(
            12, ge=2, description="Most atoms one problem uses; also the atom vocabulary."
        )
        min_rules: int = Field(2, ge=0, description="Fewest rules per problem.")
        max_rules: int = Field(8, ge=0, description="Most rules per problem.")
        min_facts: int = Field(1, ge=1, description="Fewest facts per problem.")
        max_facts: int = Field(4, ge=1, description="Most facts per problem.")
        min_depth: int = Field(0, ge=0, description="Shallowest proof of a provable query.")
        max_depth: int = Field(3, ge=0, description="Deepest proof of a provable query.")
        eval_min_depth: int | None = Field(
            None, ge=0, description="Shallowest held-out proof (default: min_depth)."
        )
        eval_max_depth: int | None = Field(
            None, ge=0, description="Deepest held-out proof (default: max_depth)."
        )
        eval_min_rules: int | None = Field(
            None,
            ge=0,
            description="Fewest rules per held-out problem (default: min_rules); lets a "
            "curriculum start from bare fact lists (min_rules = 0) while the held-out "
            "problems keep another rule range.",
        )
        and_probability: float = Field(
            0.5, ge=0.0, le=1.0, description="Chance that a rule has two body atoms, not one."
        )
        curriculum_steps: int = Field(
            0, ge=0, description="Training batches over which difficulty ramps up (0: off)."
        )
        encoding: Encoding = Field(
            "tokens",
            description="'tokens': one symbol a step; 'clauses': one fact or rule a step.",
        )
        think_steps: int = Field(
            0, ge=0, description="Extra answer steps before the scored one (time to chain reads)."
        )
        eval_size: int = Field(512, ge=1, description="Number of held-out problems.")
        disjoint_eval: bool = Field(
            True, description="Draw held-out problems from a part of the space training avoids."
        )

        @model_validator(mode="after")
        def _check(self) -> LogicalTask.Config:
            for name in ("atoms", "rules", "facts", "depth"):
                lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
                if lo > hi:
                    raise ValueError(f"min_{name} ({lo}) exceeds max_{name} ({hi})")
            if self.eval_min_rules is not None and self.eval_min_rules > self.max_rules:
                raise ValueError(
                    f"eval_min_rules ({self.eval_min_rules}) exceeds max_rules ({self.max_rules})"
                )
            lo, hi = self.eval_depths
            if lo > hi:
                raise ValueError(f"eval_min_depth ({lo}) exceeds eval_max_depth ({hi})")
            deepest = max(self.max_depth, hi)
            if self.max_atoms < deepest + 2:
                raise ValueError(
                    f"max_atoms ({self.max_atoms}) must be at least the deepest proof + 2 "
                    f"({deepest + 2}): a proof of depth d needs d + 1 atoms and one more"
                )
            if self.max_rules < self.max_depth:
                raise ValueError(
                    f"max_rules ({self.max_rules}) must be at least max_depth "
                    f"({self.max_depth}): a proof of depth d needs d rules"
                )
            return self

        @property
        def eval_depths(self) -> tuple[int, int]:
            """The held-out depth range."""
            lo = self.min_depth if self.eval_min_depth is None else self.eval_min_depth
            hi = self.max_depth if self.eval_max_depth is None else self.eval_max_depth
            return lo, hi

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        atoms = config.max_atoms
        if config.encoding == "tokens":
            self.dot, self.implies = atoms, atoms + 1
            self.query, self.answer = atoms + 2, atoms + 3
            self.input_size = atoms + 4
        else:
            self.query, self.answer = 2 * atoms, 2 * atoms + 1
            self.input_size = 2 * atoms + 2
        self.output_size = 2
        self.deepest = max(config.max_depth, config.eval_depths[1])
        self.buckets = self.deepest + 2  # depths 0..deepest, then unprovable
        self.bucket_names = [f"accuracy_depth_{k}" for k in range(self.deepest + 1)]
        self.bucket_names.append("accuracy_unprovable")

    @property
    def unprovable(self) -> int:
        """The bucket of unprovable queries."""
        return self.buckets - 1

    def problem_at(
        self, rng: random.Random, index: int, limits: tuple[int, ...], side: bool | None
    ) -> Problem:
        """Problem number ``index`` of its split (provable and unprovable queries alternate)."""
        return self.problem(rng, index % 2 == 0, limits, side)

    def limits(self, batch_index: int | None) -> tuple[int, int, int, int, int]:
        """(most atoms, fewest rules, most rules, lowest depth, highest depth) of training
        batch ``batch_index``, or of the held-out problems for ``None``."""
        c = self.config
        if batch_index is None:
            rules_lo = c.min_rules if c.eval_min_rules is None else c.eval_min_rules
            return (c.max_atoms, rules_lo, c.max_rules, *c.eval_depths)
        ramp = (batch_index, c.curriculum_steps)
        return (
            symbolic.ramp(c.min_atoms, c.max_atoms, *ramp),
            c.min_rules,
            symbolic.ramp(c.min_rules, c.max_rules, *ramp),
            c.min_depth,
            symbolic.ramp(c.min_depth, c.max_depth, *ramp),
        )

    def problem(
        self,
        rng: random.Random,
        provable: bool,
        limits: tuple[int, int, int, int, int],
        side: bool | None,
    ) -> Problem:
        """One problem on ``side`` of the held-out partition.

        ``limits`` is (most atoms, fewest rules, most rules, shallowest depth, deepest
        depth).
        """
        return symbolic.draw(lambda: self.build(rng, provable, *limits), side, "logical")

    def build(
        self,
        rng: random.Random,
        provable: bool,
        atoms_hi: int,
        rules_lo: int,
        rules_hi: int,
        depth_lo: int,
        depth_hi: int,
    ) -> Problem:
        """Build one problem: a proof chain, distractors, then the token sequence."""
        c = self.config
        depth = rng.randint(depth_lo, depth_hi)
        n_atoms = max(rng.randint(min(c.min_atoms, atoms_hi), atoms_hi), depth + 2)
        n_rules = max(rng.randint(min(rules_lo, rules_hi), rules_hi), depth)
        atoms = rng.sample(range(c.max_atoms), n_atoms)
        chain, others = atoms[: depth + 1], atoms[depth + 1 :]
        query = chain[-1]
        n_facts = rng.randint(c.min_facts, c.max_facts)
        if provable:
            facts = [chain[0], *rng.sample(others, min(n_facts - 1, len(others)))]
        else:
            facts = rng.sample(others, min(n_facts, len(others)))
        rules: list[Rule] = []
        for j in range(1, depth + 1):  # chain[j] follows from chain[j - 1] (and maybe more)
            body = [chain[j - 1]]
            pool = facts + chain[: j - 1]
            if pool and rng.random() < c.and_probability:
                second = rng.choice(pool)
                if second != body[0]:  # the chain's first atom is also a fact
                    body.append(second)
            rules.append((tuple(body), chain[j]))
        self._add_distractors(rng, rules, facts, atoms, n_rules, query, depth if provable else None)
        return self._encode(rng, facts, rules, query, depth if provable else None)

    def _add_distractors(
        self,
        rng: random.Random,
        rules: list[Rule],
        facts: list[int],
        atoms: list[int],
        n_rules: int,
        query: int,
        depth: int | None,
    ) -> None:
        """Add random rules up to ``n_rules`` that leave the query's depth (or
        unprovability) as it is; stop once one finds no place in 20 tries."""
        heads = [a for a in atoms if a not in facts]
        if not heads:
            return
        seen = {(frozenset(body), head) for body, head in rules}
        while len(rules) < n_rules:
            for _ in range(20):
                head = rng.choice(heads)
                size = 2 if rng.random() < self.config.and_probability else 1
                candidates = [a for a in atoms if a != head]
                body = tuple(rng.sample(candidates, min(size, len(candidates))))
                if (frozenset(body), head) in seen:
                    continue
                depths = forward_chain(facts, [*rules, (body, head)])
                if depths.get(query) == depth:
                    rules.append((body, head))
                    seen.add((frozenset(body), head))
                    break
            else:
                return

    def _encode(
        self,
        rng: random.Random,
        facts: list[int],
        rules: list[Rule],
        query: int,
        depth: int | None,
    ) -> Problem:
        clauses: list[tuple[tuple[int, ...], int]] = [((), atom) for atom in facts]
        clauses += [(tuple(rng.sample(body, len(body))), head) for body, head in rules]
        rng.shuffle(clauses)
        steps = self._clause_steps(clauses, query)
        steps += [(self.answer,)] * (1 + self.config.think_steps)
        targets: list[int | None] = [None] * (len(steps) - 1) + [int(depth is not None)]
        key = (
            tuple(sorted(facts)),
            tuple(sorted((tuple(sorted(body)), head) for body, head in rules)),
            query,
        )
        bucket = self.unprovable if depth is None else depth
        return Problem(tuple(steps), tuple(targets), bucket, key)

    def _clause_steps(
        self, clauses: list[tuple[tuple[int, ...], int]], query: int
    ) -> list[tuple[int, ...]]:
        """The input steps of ``clauses`` (``(body, head)``; a fact has no body), then
        the query, in the configured encoding (without the answer steps)."""
        if self.config.encoding == "tokens":
            tokens: list[int] = []
            for body, head in clauses:
                tokens += [*body, self.implies, head, self.dot] if body else [head, self.dot]
            return [(t,) for t in [*tokens, self.query, query]]
        atoms = self.config.max_atoms
        steps = [(*body, atoms + head) for body, head in clauses]
        return [*steps, (self.query, atoms + query)]

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float | Ratio]:
        """``accuracy``, then ``accuracy_depth_k`` and ``accuracy_unprovable`` (ratios)."""
        correct = symbolic.step_accuracy(outputs, batch)
        return {
            "accuracy": float(correct.mean()),
            **symbolic.bucket_ratios(correct, batch, self.bucket_names),
        }
