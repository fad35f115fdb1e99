"""The priority-sort task of the Neural Turing Machine paper (Graves et al. 2014, §4.5)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Split, Task
from nma_tasks.sequences import (
    check_range,
    error_metrics,
    masked_bce,
    random_bits,
    ranged_batches,
    uniform_ints,
)


class PrioritySortTask(Task):
    """Read random binary vectors, each with a priority; write the ``num_outputs``
    vectors of highest priority, highest first.

    Priorities are drawn uniformly from ``[-1, 1]``; equal priorities (rare in
    float32) keep their input order. With ``n`` inputs and ``m = num_outputs`` (or
    ``m = n`` when ``num_outputs`` is 0: a full sort), in a batch of
    ``T = max(n + m) + 1`` steps:

    * inputs ``(T, B, width + 2)``: steps ``0..n-1`` carry the vectors on channels
      ``0..width-1`` and their priorities on channel ``width``; step ``n`` sets
      channel ``width + 1`` (delimiter) to 1; every other entry is 0;
    * targets ``(T, B, width)``: step ``n + 1 + j`` (``j = 0..m-1``) carries the
      input vector of the ``j``-th highest priority;
    * mask ``(T, B)``: 1 on steps ``n+1..n+m``.

    The number of inputs is drawn uniformly from ``[min_inputs, max_inputs]`` in
    training and from ``[eval_min_inputs, eval_max_inputs]`` (by default the
    training range; it may exceed it) for the ``eval_size`` held-out sequences.
    The paper's setting, the default, is 20 inputs and 16 outputs.

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0)
    draws up to ``min_inputs + ⌊(max_inputs - min_inputs)·i/N⌋`` inputs; from batch
    ``N`` on, the full range (set ``min_inputs`` below ``max_inputs`` for it to act).

    Loss: binary cross-entropy of the output logits, averaged over scored bits.
    Metrics: ``bit_errors``, the mean number of wrong bits per sequence (each output
    thresholded at 0.5, the NTM paper's measure); ``sequence_accuracy``, the share
    of sequences without a wrong bit.
    """

    main_metric = "bit_errors"
    main_metric_mode = "min"

    class Config(Options):
        width: int = Field(8, ge=1, description="Bits per vector.")
        min_inputs: int = Field(20, ge=1, description="Fewest input vectors in training.")
        max_inputs: int = Field(20, ge=1, description="Most input vectors in training.")
        num_outputs: int = Field(
            16,
            ge=0,
            description="Vectors to write, highest priority first (0: all inputs, "
            "a full sort); at most the fewest inputs.",
        )
        eval_min_inputs: int | None = Field(
            None, ge=1, description="Fewest held-out input vectors (default: min_inputs)."
        )
        eval_max_inputs: int | None = Field(
            None,
            ge=1,
            description="Most held-out input vectors (default: max_inputs); may exceed it.",
        )
        eval_size: int = Field(256, ge=1, description="Number of held-out sequences.")
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the largest number of inputs grows "
            "linearly from min_inputs to max_inputs (0: no curriculum).",
        )

        @model_validator(mode="after")
        def _check_ranges(self) -> PrioritySortTask.Config:
            check_range("min_inputs", self.min_inputs, "max_inputs", self.max_inputs)
            eval_min = self.eval_min_inputs or self.min_inputs
            eval_max = self.eval_max_inputs or self.max_inputs
            check_range("eval_min_inputs", eval_min, "eval_max_inputs", eval_max)
            if self.num_outputs:
                check_range("num_outputs", self.num_outputs, "min_inputs", self.min_inputs)
                check_range("num_outputs", self.num_outputs, "eval_min_inputs", eval_min)
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_size = config.width + 2
        self.output_size = config.width

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or ``eval_size`` held-out sequences in batches."""
        c = self.config
        held_out = (c.eval_min_inputs or c.min_inputs, c.eval_max_inputs or c.max_inputs)
        return ranged_batches(
            split,
            batch_size,
            generator,
            lambda size, ranges, gen: self.sample(size, *ranges[0], gen),
            [(c.min_inputs, c.max_inputs)],
            [held_out],
            c.eval_size,
            c.curriculum_steps,
        )

    def sample(
        self, batch_size: int, min_inputs: int, max_inputs: int, generator: torch.Generator
    ) -> Batch:
        """One batch with the number of inputs uniform in ``[min_inputs, max_inputs]``."""
        w = self.config.width
        n = uniform_ints(min_inputs, max_inputs, batch_size, generator).unsqueeze(0)  # (1, B)
        m = torch.full_like(n, self.config.num_outputs) if self.config.num_outputs else n
        most = int(n.max())
        bits = random_bits((most, batch_size, w), generator)
        priority = torch.rand(most, batch_size, generator=generator) * 2 - 1
        present = torch.arange(most).unsqueeze(1) < n  # (most, B)
        bits = bits * present.unsqueeze(-1)
        priority = priority * present

        steps = int((n + m).max()) + 1
        t = torch.arange(steps).unsqueeze(1)  # (T, 1)
        inputs = torch.zeros(steps, batch_size, w + 2)
        inputs[:most, :, :w] = bits
        inputs[:most, :, w] = priority
        inputs[..., w + 1] = (t == n).float()

        # input positions by descending priority; absent positions sort last
        keys = priority.masked_fill(~present, float("-inf"))
        order = keys.argsort(dim=0, descending=True, stable=True)  # (most, B)
        rank = t - n - 1  # (T, B): which output this step writes
        mask = (rank >= 0) & (rank < m)
        source = order.gather(0, torch.where(mask, rank, 0).clamp(max=most - 1))  # (T, B)
        targets = bits.gather(0, source.unsqueeze(-1).expand(steps, batch_size, w))
        targets = targets * mask.unsqueeze(-1)
        return Batch(inputs, targets, mask.float())

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Binary cross-entropy over scored bits; ``outputs`` are logits ``(T, B, width)``."""
        return masked_bce(outputs, batch.targets, batch.mask)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``bit_errors`` per sequence and ``sequence_accuracy``."""
        return error_metrics(outputs, batch.targets, batch.mask)
