"""A stream of algorithmic tasks (copy, repeat copy, associative recall, priority
sort) learned one after another by one memory model."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from nma import Batch, Options, Split, StreamTask, Task
from nma_tasks.associative_recall import AssociativeRecallTask
from nma_tasks.copy import CopyTask
from nma_tasks.priority_sort import PrioritySortTask
from nma_tasks.repeat_copy import RepeatCopyTask

TaskName = Literal["copy", "repeat-copy", "associative-recall", "priority-sort"]


class AlgorithmicStreamTask(StreamTask):
    """Experience ``i`` is the algorithmic task ``tasks[i]``, built from its own class
    (``nma_tasks.copy.CopyTask`` ...) with the stream's ``width`` and small sizes, and
    used through the ``Task`` interface only (its ``batches``).

    The tasks' inputs and outputs differ in width: inputs are padded with zero
    channels to the widest (``width + 2``); targets are padded with -1 channels
    (not scored) to the widest output (``width + 1``, repeat copy's end marker).

    Loss: binary cross-entropy of the logits over the scored bits (scored step,
    target not -1), as each task's own loss. Metrics: ``accuracy`` (the matrix's
    metric), the share of scored bits right when each logit is thresholded at 0,
    averaged over sequences; ``sequence_accuracy``, the share of sequences with every
    scored bit right.
    """

    class Config(Options):
        tasks: list[TaskName] = Field(
            default_factory=lambda: ["copy", "repeat-copy", "associative-recall"],
            min_length=1,
            description="The tasks, in the order they are learned.",
        )
        width: int = Field(4, ge=1, description="Bits per vector, in every task.")
        max_length: int = Field(
            5, ge=1, description="Copy and repeat copy: longest sequence (shortest: 1)."
        )
        max_repeats: int = Field(3, ge=1, description="Repeat copy: most copies (fewest: 1).")
        max_items: int = Field(4, ge=2, description="Associative recall: most items (fewest: 2).")
        sort_inputs: int = Field(6, ge=1, description="Priority sort: input vectors.")
        sort_outputs: int = Field(4, ge=1, description="Priority sort: vectors written back.")
        eval_size: int = Field(64, ge=1, description="Held-out sequences per task.")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.parts: list[Task] = [self._build(name, config) for name in config.tasks]
        self.num_experiences = len(self.parts)
        self.input_size = max(t.input_size for t in self.parts)
        self.output_size = max(t.output_size for t in self.parts)

    @staticmethod
    def _build(name: str, c: Config) -> Task:
        common = {"width": c.width, "eval_size": c.eval_size}
        if name == "copy":
            return CopyTask(CopyTask.Config(max_length=c.max_length, **common))
        if name == "repeat-copy":
            options = {"max_length": c.max_length, "max_repeats": c.max_repeats}
            return RepeatCopyTask(RepeatCopyTask.Config(**options, **common))
        if name == "associative-recall":
            return AssociativeRecallTask(
                AssociativeRecallTask.Config(max_items=c.max_items, item_length=1, **common)
            )
        sort = {"min_inputs": c.sort_inputs, "max_inputs": c.sort_inputs}
        sort["num_outputs"] = min(c.sort_outputs, c.sort_inputs)
        return PrioritySortTask(PrioritySortTask.Config(**sort, **common))

    def experience_names(self) -> list[str]:
        """The tasks' names."""
        return list(self.config.tasks)

    def batches(
        self,
        split: Split,
        batch_size: int,
        generator: torch.Generator,
        experience: int | None = None,
    ) -> Iterator[Batch]:
        """One task's batches, widened; for ``experience=None``, training batches each
        from a task drawn uniformly, and every task's held-out set in turn."""
        self.check_experience(experience)
        if experience is not None:
            return map(self.widen, self.parts[experience].batches(split, batch_size, generator))
        if split == "eval":
            return (
                self.widen(b) for t in self.parts for b in t.batches(split, batch_size, generator)
            )
        return self._joint(batch_size, generator)

    def _joint(self, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        streams = [t.batches("train", batch_size, generator) for t in self.parts]
        while True:
            which = int(torch.randint(len(streams), (1,), generator=generator))
            yield self.widen(next(streams[which]))

    def widen(self, batch: Batch) -> Batch:
        """Inputs padded with zero channels, targets with -1 (unscored) channels."""
        inputs = F.pad(batch.inputs, (0, self.input_size - batch.inputs.shape[-1]))
        extra = self.output_size - batch.targets.shape[-1]
        targets = F.pad(batch.targets, (0, extra), value=-1.0)
        return Batch(inputs, targets, batch.mask)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Binary cross-entropy averaged over the scored bits."""
        scored = batch.mask.unsqueeze(-1) * (batch.targets >= 0)
        bce = F.binary_cross_entropy_with_logits(
            outputs, batch.targets.clamp_min(0.0), reduction="none"
        )
        return (bce * scored).sum() / scored.sum().clamp_min(1.0)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``accuracy`` (share of scored bits right) and ``sequence_accuracy``."""
        scored = batch.mask.unsqueeze(-1) * (batch.targets >= 0)
        right = ((outputs > 0).float() == batch.targets).float() * scored
        bits = scored.sum(dim=(0, 2)).clamp_min(1.0)
        per_sequence = right.sum(dim=(0, 2)) / bits
        return {
            "accuracy": per_sequence.mean().item(),
            "sequence_accuracy": (per_sequence == 1).float().mean().item(),
        }
