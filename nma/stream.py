"""The ``StreamTask`` interface: a task whose data comes in experiences.

A continual-learning stream (permuted digits, split digits, a sequence of
algorithmic tasks) is a :class:`nma.Task` with ``num_experiences`` experiences. The
trainer trains on experience 0, then 1, ..., each for ``train.experience_steps``
steps, and evaluates on every experience after each one (the accuracy matrix R of
Lopez-Paz & Ranzato 2017, see :mod:`nma.continual_metrics`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import torch
from torch import Tensor

from nma.task import Batch, Split, Task


class StreamTask(Task):
    """A task whose data comes in experiences, learned one after another.

    Subclasses set ``num_experiences`` in ``__init__`` and implement
    :meth:`batches` with its ``experience`` argument:

    * ``experience=i``: the data of experience ``i`` alone: an endless stream for
      ``"train"``, the experience's held-out set for ``"eval"``;
    * ``experience=None``: every experience at once: training batches drawn from the
      union of the experiences (the joint-training reference), the held-out sets of
      all experiences one after another for ``"eval"``. So a stream is also an
      ordinary task.

    A batch of one experience and a batch of another must be scored by the same
    :meth:`loss` and :meth:`metrics` (the joint stream mixes them), so whatever
    differs between experiences (the classes allowed, the channels used) travels in
    the batch. ``experience_metric`` names the metric, a fraction in ``[0, 1]``
    where higher is better, that fills the accuracy matrix.
    """

    experience_metric: ClassVar[str] = "accuracy"
    main_metric: ClassVar[str] = "accuracy"
    main_metric_mode = "max"
    num_experiences: int

    def batches(  # type: ignore[override]
        self,
        split: Split,
        batch_size: int,
        generator: torch.Generator,
        experience: int | None = None,
    ) -> Iterator[Batch]:
        """Batches of one experience, or of all of them (``experience=None``)."""
        raise NotImplementedError

    def experience_names(self) -> list[str]:
        """Short names of the experiences, in order (shown in tables and figures)."""
        return [f"experience {i}" for i in range(self.num_experiences)]

    def check_experience(self, experience: int | None) -> None:
        """Raise a ``ValueError`` for an experience index out of range."""
        if experience is not None and not 0 <= experience < self.num_experiences:
            raise ValueError(
                f"experience {experience} is out of range (0..{self.num_experiences - 1})"
            )


def is_stream(task: Task) -> bool:
    """Whether ``task`` comes in experiences."""
    return isinstance(task, StreamTask)


def pad_steps(batch: Batch, steps: int) -> Batch:
    """``batch`` lengthened to ``steps`` time steps with zeros (unscored, mask 0)."""
    extra = steps - batch.inputs.shape[0]
    if extra < 0:
        raise ValueError(f"cannot shorten a batch of {batch.inputs.shape[0]} steps to {steps}")
    if extra == 0:
        return batch
    return Batch(*(_pad_time(t, extra) for t in batch))


def concat_batches(batches: list[Batch]) -> Batch:
    """Sequences of several batches side by side (along the batch dimension), the
    shorter ones padded at the end with unscored zero steps."""
    steps = max(b.inputs.shape[0] for b in batches)
    padded = [pad_steps(b, steps) for b in batches]
    return Batch(*(torch.cat(parts, dim=1) for parts in zip(*padded, strict=True)))


def select(batch: Batch, index: Tensor | slice) -> Batch:
    """The sequences ``index`` (along the batch dimension) of ``batch``."""
    return Batch(*(t[:, index] for t in batch))


def _pad_time(tensor: Tensor, extra: int) -> Tensor:
    shape = (extra, *tensor.shape[1:])
    return torch.cat([tensor, tensor.new_zeros(shape)], dim=0)
