"""Shared machinery of the symbolic reasoning tasks (``logical``, ``temporal``, ``knowledge``).

A problem is a list of steps, each a set of active input channels (a one-hot token,
or several one-hot blocks), and an answer index for the scored steps. This module
turns problems into time-major batches, computes the masked cross-entropy and the
accuracies, splits the problem space into a training and a held-out part, and
ramps difficulty for curricula.

Targets layout, ``(T, B, 2)`` integers:

* ``[..., 0]``: the answer index at scored steps (0 elsewhere);
* ``[..., 1]``: the sequence's bucket (a proof depth, a kind of problem, ...), the
  same at every step. The loss ignores it; the metrics read it to split the
  accuracy by bucket. It is the only place the metrics can learn it from, since
  ``Task.metrics`` sees nothing but the outputs and the batch.

Per-bucket metrics are :class:`nma.Ratio` values (the sum of the bucket's
per-sequence values and its number of sequences), which the trainer sums over the
held-out batches before dividing: exact however the buckets fall across batches.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from nma import Batch, Ratio, Split, Task

ANSWER, BUCKET = 0, 1
HELD_OUT_PARTS = 4
"""One problem in ``HELD_OUT_PARTS`` (by hash of its canonical form) is held out."""
MAX_TRIES = 10_000


@dataclass(frozen=True)
class Problem:
    """One encoded problem.

    Attributes:
        steps: the active input channels at each step (an empty tuple: a blank step).
        targets: the answer index at each step, ``None`` where the step is not scored.
        bucket: the metric bucket (a proof depth, a kind of problem, ...).
        key: a canonical form of the problem, hashed to split training from held-out.
    """

    steps: tuple[tuple[int, ...], ...]
    targets: tuple[int | None, ...]
    bucket: int
    key: Hashable


def is_held_out(key: Hashable) -> bool:
    """Whether a problem with canonical form ``key`` belongs to the held-out part."""
    digest = hashlib.blake2b(repr(key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") % HELD_OUT_PARTS == 0


def python_rng(generator: torch.Generator) -> random.Random:
    """A Python RNG seeded from one draw of ``generator`` (so all randomness stems from it)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return random.Random(seed)


def ramp(low: int, high: int, batch_index: int, steps: int) -> int:
    """A curriculum: ``low`` at batch 0 rising linearly to ``high`` at batch ``steps``."""
    if steps <= 0 or batch_index >= steps:
        return high
    return low + round((high - low) * batch_index / steps)


def draw(make: Callable[[], Problem], held_out: bool | None, what: str) -> Problem:
    """``make()`` until the problem lies on the wanted side of the held-out partition.

    ``held_out`` is ``True`` for the held-out split, ``False`` for training and ``None``
    to accept any problem.
    """
    for _ in range(MAX_TRIES):
        problem = make()
        if held_out is None or is_held_out(problem.key) == held_out:
            return problem
    side = "held-out" if held_out else "training"
    raise RuntimeError(
        f"{what}: found no {side} problem in {MAX_TRIES} tries; the problem space is too "
        "small to split, widen the options or set disjoint_eval=false"
    )


def encode(problems: Sequence[Problem], input_size: int) -> Batch:
    """Time-major batch of ``problems``, padded with all-zero steps to the longest."""
    steps = max(len(p.steps) for p in problems)
    size = len(problems)
    t_idx: list[int] = []
    b_idx: list[int] = []
    c_idx: list[int] = []
    targets = torch.zeros(steps, size, 2, dtype=torch.long)
    mask = torch.zeros(steps, size)
    for b, problem in enumerate(problems):
        for t, channels in enumerate(problem.steps):
            t_idx.extend([t] * len(channels))
            b_idx.extend([b] * len(channels))
            c_idx.extend(channels)
        targets[:, b, BUCKET] = problem.bucket
        for t, answer in enumerate(problem.targets):
            if answer is not None:
                targets[t, b, ANSWER] = answer
                mask[t, b] = 1.0
    inputs = torch.zeros(steps, size, input_size)
    inputs[t_idx, b_idx, c_idx] = 1.0
    return Batch(inputs, targets, mask)


def split_batches(problems: Sequence[Problem], batch_size: int, input_size: int) -> Iterator[Batch]:
    """The held-out ``problems`` in batches of ``batch_size`` (the last may be smaller)."""
    for start in range(0, len(problems), batch_size):
        yield encode(problems[start : start + batch_size], input_size)


def problem_batches(
    split: str,
    batch_size: int,
    generator: torch.Generator,
    input_size: int,
    eval_size: int,
    disjoint_eval: bool,
    limits: Callable[[int | None], tuple[int, ...]],
    problem: Callable[[random.Random, int, tuple[int, ...], bool | None], Problem],
) -> Iterator[Batch]:
    """The batches of a generated task: endless for ``"train"``, ``eval_size`` problems
    for ``"eval"``.

    Args:
        limits: the difficulty of training batch ``i`` (the curriculum), or of the
            held-out problems for ``None``.
        problem: ``problem(rng, index, limits, side)`` draws problem number ``index``
            (counted over the whole split) on ``side`` of the held-out partition
            (``None`` when ``disjoint_eval`` is off).
    """
    if split not in ("train", "eval"):
        raise ValueError(f"unknown split {split!r}")
    side = (split == "eval") if disjoint_eval else None
    if split == "eval":
        rng = python_rng(generator)
        hardest = limits(None)
        problems = [problem(rng, i, hardest, side) for i in range(eval_size)]
        yield from split_batches(problems, batch_size, input_size)
        return
    index = 0
    while True:
        rng = python_rng(generator)
        current = limits(index)
        first = index * batch_size
        problems = [problem(rng, first + i, current, side) for i in range(batch_size)]
        yield encode(problems, input_size)
        index += 1


def masked_cross_entropy(outputs: Tensor, batch: Batch) -> Tensor:
    """Cross-entropy of the logits ``(T, B, A)`` at the scored steps, averaged over them."""
    steps, size, answers = outputs.shape
    answer = batch.targets[..., ANSWER].reshape(-1)
    ce = F.cross_entropy(outputs.reshape(steps * size, answers), answer, reduction="none")
    mask = batch.mask.reshape(-1)
    return (ce * mask).sum() / mask.sum().clamp_min(1.0)


def correct_steps(outputs: Tensor, batch: Batch) -> Tensor:
    """``(T, B)``: 1 where the arg-max answer is right at a scored step, else 0."""
    right = (outputs.argmax(dim=-1) == batch.targets[..., ANSWER]).float()
    return right * batch.mask


def step_accuracy(outputs: Tensor, batch: Batch) -> Tensor:
    """``(B,)``: each sequence's share of scored steps answered right."""
    return correct_steps(outputs, batch).sum(0) / batch.mask.sum(0).clamp_min(1.0)


def exact_match(outputs: Tensor, batch: Batch) -> Tensor:
    """``(B,)``: 1 where every scored step of the sequence is right."""
    wrong = batch.mask - correct_steps(outputs, batch)
    return (wrong.sum(0) == 0).float()


def bucket_ratios(values: Tensor, batch: Batch, names: Sequence[str | None]) -> dict[str, Ratio]:
    """Per-bucket sums and counts of the per-sequence ``values`` ``(B,)``, named by
    ``names[k]`` for bucket ``k`` (buckets named ``None`` are left out).

    Every named bucket is returned, with count 0 when the batch has none of it; the
    trainer drops a metric whose count is 0 over the whole held-out split.
    """
    buckets = len(names)
    bucket = batch.targets[0, :, BUCKET]  # (B,), constant along time
    totals = torch.zeros(buckets, dtype=torch.float64, device=values.device)
    totals.index_add_(0, bucket, values.double())
    counts = torch.bincount(bucket, minlength=buckets)
    pairs = zip(totals.tolist(), counts.tolist(), strict=True)
    return {
        name: Ratio(total, float(count))
        for name, (total, count) in zip(names, pairs, strict=True)
        if name is not None
    }


class GeneratedTask(Task):
    """The common part of the generated reasoning tasks: batches from
    :func:`problem_batches`, cross-entropy at the scored steps, accuracy as the main
    metric.

    A subclass defines :meth:`limits` (its curriculum) and :meth:`problem_at`, and its
    ``Config`` has ``eval_size`` and ``disjoint_eval``.
    """

    main_metric = "accuracy"
    main_metric_mode = "max"

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or the ``eval_size`` held-out problems in batches."""
        c = self.config
        return problem_batches(
            split,
            batch_size,
            generator,
            self.input_size,
            c.eval_size,  # type: ignore[attr-defined]
            c.disjoint_eval,  # type: ignore[attr-defined]
            self.limits,
            self.problem_at,
        )

    def limits(self, batch_index: int | None) -> tuple[int, ...]:
        """The difficulty of training batch ``batch_index``, or of the held-out problems
        for ``None``."""
        raise NotImplementedError

    def problem_at(
        self, rng: random.Random, index: int, limits: tuple[int, ...], side: bool | None
    ) -> Problem:
        """Problem number ``index`` of its split (see :func:`problem_batches`)."""
        raise NotImplementedError

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Cross-entropy of the answer logits at the scored steps."""
        return masked_cross_entropy(outputs, batch)
