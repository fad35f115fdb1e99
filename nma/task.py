"""The ``Task`` interface: data, loss and metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar, Literal, NamedTuple

import torch
from torch import Tensor

from nma.options import Options


class Batch(NamedTuple):
    """One batch, time-major.

    Attributes:
        inputs: ``(T, B, input_size)``.
        targets: ``(T, B, output_size)`` (or whatever the task's loss expects).
        mask: ``(T, B)``, 1 where the output is scored, 0 elsewhere.
    """

    inputs: Tensor
    targets: Tensor
    mask: Tensor

    def to(self, device: torch.device | str) -> Batch:
        """The same batch on ``device``."""
        return Batch(*(t.to(device) for t in self))


Split = Literal["train", "eval"]


class Ratio(NamedTuple):
    """A metric reported as ``total / count`` rather than as a mean over the batch.

    Evaluation sums the totals and the counts over all held-out batches before
    dividing, so a metric over a subset of the sequences (the accuracy on questions
    of one kind, of one proof depth, of one bAbI task) is exact however the subset
    falls across batches. A metric whose count is 0 over the whole split is left out.
    """

    total: float
    count: float


MetricValue = float | Ratio


def combine_metrics(batches: list[tuple[dict[str, MetricValue], int]]) -> dict[str, float]:
    """Metrics over several batches from each batch's metrics and size.

    Plain values are means over a batch's sequences, averaged weighted by batch size;
    :class:`Ratio` values are summed, then divided.
    """
    totals: dict[str, float] = {}
    counts: dict[str, float] = {}
    for metrics, size in batches:
        for name, value in metrics.items():
            if isinstance(value, Ratio):
                total, count = float(value.total), float(value.count)
            else:
                total, count = float(value) * size, float(size)
            totals[name] = totals.get(name, 0.0) + total
            counts[name] = counts.get(name, 0.0) + count
    return {name: totals[name] / counts[name] for name in totals if counts[name] > 0}


class Task:
    """A source of batches with a loss and metrics.

    Subclasses set ``Config``, ``main_metric`` (the metric shown in the progress
    display), ``main_metric_mode`` (``"min"`` if lower is better) and, in
    ``__init__``, ``input_size`` and ``output_size``.

    The ``"train"`` split is an endless stream; ``"eval"`` is a finite held-out set.
    All randomness must come from the ``generator`` argument, so that a run is
    reproducible from its seed and resumes exactly (the trainer recreates the
    stream and skips the batches already used).
    """

    Config: ClassVar[type[Options]] = Options
    main_metric: ClassVar[str] = "loss"
    main_metric_mode: ClassVar[Literal["min", "max"]] = "min"
    input_size: int
    output_size: int
    output_channels: list[list[int]] | None = None
    """Per output class, the input channels that spell it (a word's channels), or an
    empty list for a class no input spells; ``None`` (the default) where outputs are not
    input symbols. A memory that ties the output head to its input embedding
    (:attr:`nma.Memory.output_embedding`) needs it."""

    def __init__(self, config: Options) -> None:
        self.config = config

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Yield batches of ``split``: endless for ``"train"``, finite for ``"eval"``."""
        raise NotImplementedError

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """A scalar loss from the model's ``(T, B, output_size)`` outputs."""
        raise NotImplementedError

    def summarize_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Metrics derived from the combined ones, after :func:`combine_metrics`.

        For figures that are not averages over sequences: the mean of per-task errors,
        the number of tasks failed. The default returns ``metrics`` unchanged.
        """
        return metrics

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, MetricValue]:
        """Metrics of one batch: each a mean over the batch's sequences, or a
        :class:`Ratio` (a total and a count, for metrics over a subset of them).

        The trainer combines batches with :func:`combine_metrics`, then calls
        :meth:`summarize_metrics`; the result must contain ``main_metric``.
        """
        raise NotImplementedError
