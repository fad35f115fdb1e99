"""Sequence completion and event ordering: hidden rules over time."""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import partial
from typing import Literal

from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Ratio
from nma_tasks import symbolic
from nma_tasks.symbolic import Problem

Kind = Literal["periodic", "arithmetic", "ordering"]
KINDS: tuple[Kind, ...] = ("periodic", "arithmetic", "ordering")


def is_primitive(motif: list[int]) -> bool:
    """Whether ``motif`` is not a repetition of a shorter block."""
    p = len(motif)
    return not any(p % q == 0 and motif == motif[:q] * (p // q) for q in range(1, p))


class TemporalTask(symbolic.GeneratedTask):
    """Continue a sequence made by a hidden rule, or answer a question about event order.

    Three kinds of problem, drawn uniformly from ``kinds`` for each sequence:

    * ``periodic``: a random motif of ``p`` symbols (not itself a repetition), repeated;
      ``L`` tokens are shown (``L >= 2p``, so the rule is determined) and the next
      ``continuation`` tokens are asked for;
    * ``arithmetic``: ``x_t = (a + s·t) mod base`` with random ``a`` and ``s != 0``;
      ``L`` tokens are shown, the next ``continuation`` asked for;
    * ``ordering``: ``n`` distinct events, then one question, uniformly of three types:
      ``before X`` (the event just before X), ``after X`` (the event just after X) or
      ``precedes X Y`` (did X happen before Y? yes and no equally often).

    Encoding, one token per step, one-hot over ``symbols + 4`` input channels (symbol
    ``i`` is channel ``i``, then ``before``, ``after``, ``precedes``, ``answer``):

    * periodic / arithmetic: the ``L`` shown symbols, then ``continuation`` steps
      carrying ``answer``, each scored with the next symbol of the sequence;
    * ordering: the ``n`` events, the question token, ``X`` (and ``Y``), then one
      ``answer`` step, scored;
    * steps after a shorter sequence's end are all-zero inputs (padding).

    Output: logits over ``symbols + 2`` answers (the symbols, then ``no``, ``yes``).
    Targets ``(T, B, 2)`` integers: the answer at ``[..., 0]`` on scored steps, and the
    kind (0 periodic, 1 arithmetic, 2 ordering) at ``[..., 1]``, read only by the
    metrics. Mask: 1 on the scored steps. Loss: cross-entropy at the scored steps.
    Metrics: ``accuracy`` (main: per sequence, the share of scored steps right, then
    the mean over sequences), ``sequence_accuracy`` (all scored steps right), and
    ``accuracy_periodic``, ``accuracy_arithmetic``, ``accuracy_ordering`` (the same
    per-sequence share, over the sequences of that kind) for the kinds in ``kinds``:
    :class:`nma.Ratio` values, summed over the held-out split before dividing (so
    exact), reported only where the batch (or held-out split) has such a sequence.
    Curriculum: over the first ``curriculum_steps`` training batches the upper
    ends of the length, period and event-count ranges rise linearly from their minima.
    Held-out problems come from a quarter of the problem space (by hash of the token
    sequence) that training never draws from.
    """

    class Config(Options):
        kinds: list[Kind] = Field(
            default_factory=lambda: list(KINDS), description="Kinds of problem, mixed."
        )
        symbols: int = Field(
            12, ge=2, description="Symbol vocabulary (motif symbols, residues, events)."
        )
        min_length: int = Field(4, ge=2, description="Fewest shown tokens (periodic/arithmetic).")
        max_length: int = Field(12, ge=2, description="Most shown tokens (periodic/arithmetic).")
        min_period: int = Field(2, ge=1, description="Shortest periodic motif.")
        max_period: int = Field(4, ge=1, description="Longest periodic motif.")
        base: int = Field(10, ge=2, description="Modulus of the arithmetic progressions.")
        continuation: int = Field(
            2, ge=1, description="Tokens to predict after a periodic/arithmetic sequence."
        )
        min_events: int = Field(3, ge=2, description="Fewest events in an ordering problem.")
        max_events: int = Field(8, ge=2, description="Most events in an ordering problem.")
        curriculum_steps: int = Field(
            0, ge=0, description="Training batches over which difficulty ramps up (0: off)."
        )
        eval_size: int = Field(512, ge=1, description="Number of held-out problems.")
        disjoint_eval: bool = Field(
            True, description="Draw held-out problems from a part of the space training avoids."
        )

        @model_validator(mode="after")
        def _check(self) -> TemporalTask.Config:
            if not self.kinds:
                raise ValueError(f"kinds is empty; choose from {', '.join(KINDS)}")
            if len(set(self.kinds)) != len(self.kinds):
                raise ValueError(f"kinds lists a kind twice: {self.kinds}")
            for name in ("length", "period", "events"):
                lo, hi = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
                if lo > hi:
                    raise ValueError(f"min_{name} ({lo}) exceeds max_{name} ({hi})")
            if "periodic" in self.kinds and 2 * self.min_period > self.min_length:
                raise ValueError(
                    f"min_length ({self.min_length}) must be at least 2 * min_period "
                    f"({2 * self.min_period}): two periods are shown to fix the rule"
                )
            if "periodic" in self.kinds and 2 * self.max_period > self.max_length:
                raise ValueError(
                    f"max_period ({self.max_period}) exceeds max_length // 2 "
                    f"({self.max_length // 2}): two periods are shown to fix the rule"
                )
            if "arithmetic" in self.kinds and self.base > self.symbols:
                raise ValueError(f"base ({self.base}) exceeds symbols ({self.symbols})")
            if "ordering" in self.kinds and self.max_events > self.symbols:
                raise ValueError(
                    f"max_events ({self.max_events}) exceeds symbols ({self.symbols}): "
                    "events are distinct symbols"
                )
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        s = config.symbols
        self.before, self.after, self.precedes, self.answer = s, s + 1, s + 2, s + 3
        self.no, self.yes = s, s + 1
        self.input_size = s + 4
        self.output_size = s + 2
        self.bucket_names = [f"accuracy_{k}" if k in config.kinds else None for k in KINDS]

    def problem_at(
        self, rng: random.Random, index: int, limits: tuple[int, ...], side: bool | None
    ) -> Problem:
        """Problem number ``index`` of its split (the index plays no part here)."""
        return self.problem(rng, limits, side)

    def limits(self, batch_index: int | None) -> tuple[int, int, int]:
        """(length, period, events) of training batch ``batch_index``, or of the
        held-out problems for ``None``."""
        c = self.config
        if batch_index is None:
            return (c.max_length, c.max_period, c.max_events)
        ramp = (batch_index, c.curriculum_steps)
        return (
            symbolic.ramp(c.min_length, c.max_length, *ramp),
            symbolic.ramp(c.min_period, c.max_period, *ramp),
            symbolic.ramp(c.min_events, c.max_events, *ramp),
        )

    def problem(
        self, rng: random.Random, limits: tuple[int, int, int], side: bool | None
    ) -> Problem:
        """One problem on ``side`` of the held-out partition; ``limits`` is the upper end
        of the (length, period, events) ranges."""
        length_hi, period_hi, events_hi = limits
        kind = rng.choice(self.config.kinds)
        make: Callable[[], Problem]
        if kind == "periodic":
            make = partial(self.periodic, rng, length_hi, period_hi)
        elif kind == "arithmetic":
            make = partial(self.arithmetic, rng, length_hi)
        else:
            make = partial(self.ordering, rng, events_hi)
        return symbolic.draw(make, side, f"temporal ({kind})")

    def periodic(self, rng: random.Random, length_hi: int, period_hi: int) -> Problem:
        """A repeated random motif."""
        c = self.config
        length = rng.randint(c.min_length, length_hi)
        period = rng.randint(c.min_period, max(c.min_period, min(period_hi, length // 2)))
        motif = [rng.randrange(c.symbols) for _ in range(period)]
        while not is_primitive(motif):
            motif = [rng.randrange(c.symbols) for _ in range(period)]
        sequence = [motif[t % period] for t in range(length + c.continuation)]
        return self._continuation(sequence[:length], sequence[length:], KINDS.index("periodic"))

    def arithmetic(self, rng: random.Random, length_hi: int) -> Problem:
        """An arithmetic progression modulo ``base``."""
        c = self.config
        length = rng.randint(c.min_length, length_hi)
        start, step = rng.randrange(c.base), rng.randrange(1, c.base)
        sequence = [(start + step * t) % c.base for t in range(length + c.continuation)]
        return self._continuation(sequence[:length], sequence[length:], KINDS.index("arithmetic"))

    def _continuation(self, shown: list[int], answers: list[int], bucket: int) -> Problem:
        steps = [(t,) for t in shown] + [(self.answer,)] * len(answers)
        targets: list[int | None] = [None] * len(shown) + list(answers)
        key = (KINDS[bucket], tuple(shown))
        return Problem(tuple(steps), tuple(targets), bucket, key)

    def ordering(self, rng: random.Random, events_hi: int) -> Problem:
        """Distinct events, then a question about their order."""
        c = self.config
        events = rng.sample(range(c.symbols), rng.randint(c.min_events, events_hi))
        question = rng.choice(("before", "after", "precedes"))
        if question == "before":
            i = rng.randrange(1, len(events))
            asked, answer = [self.before, events[i]], events[i - 1]
        elif question == "after":
            i = rng.randrange(len(events) - 1)
            asked, answer = [self.after, events[i]], events[i + 1]
        else:
            i, j = sorted(rng.sample(range(len(events)), 2))
            if rng.random() < 0.5:
                asked, answer = [self.precedes, events[i], events[j]], self.yes
            else:
                asked, answer = [self.precedes, events[j], events[i]], self.no
        tokens = [*events, *asked, self.answer]
        targets: list[int | None] = [None] * (len(tokens) - 1) + [answer]
        key = ("ordering", tuple(tokens))
        return Problem(tuple((t,) for t in tokens), tuple(targets), KINDS.index("ordering"), key)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float | Ratio]:
        """``accuracy``, ``sequence_accuracy`` and per-kind accuracies (ratios)."""
        correct = symbolic.step_accuracy(outputs, batch)
        return {
            "accuracy": float(correct.mean()),
            "sequence_accuracy": float(symbolic.exact_match(outputs, batch).mean()),
            **symbolic.bucket_ratios(correct, batch, self.bucket_names),
        }
