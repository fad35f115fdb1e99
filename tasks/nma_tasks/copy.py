"""The copy task of the Neural Turing Machine paper (Graves et al. 2014, §4.1)."""

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


class CopyTask(Task):
    """Read a sequence of random binary vectors, then write it back.

    Encoding, for a sequence of length ``L`` in a batch whose longest is ``Lmax``
    (``T = 2·Lmax + 1`` steps):

    * inputs ``(T, B, width + 1)``: steps ``0..L-1`` carry the vectors on the first
      ``width`` channels; step ``L`` sets the last (delimiter) channel to 1; every
      other entry is 0;
    * targets ``(T, B, width)``: steps ``L+1..2L`` carry the vectors again;
    * mask ``(T, B)``: 1 on steps ``L+1..2L``.

    Lengths are drawn uniformly from ``[min_length, max_length]`` for each sequence
    during training, and from ``[eval_min_length, eval_max_length]`` (by default the
    training range) for the ``eval_size`` held-out sequences, so generalisation to
    longer sequences is measured by raising ``eval_max_length`` (the model runs any
    length: train up to 20, evaluate up to 120, say).

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0)
    draws lengths from ``[min_length, min_length + ⌊(max_length - min_length)·i/N⌋]``;
    from batch ``N`` on, the full range.

    Loss: binary cross-entropy of the output logits, averaged over scored bits.
    Metrics: ``bit_errors``, the mean number of wrong bits per sequence when each
    output is thresholded at 0.5 (the NTM paper's measure); ``sequence_accuracy``,
    the share of sequences copied without error.
    """

    main_metric = "bit_errors"
    main_metric_mode = "min"

    class Config(Options):
        width: int = Field(8, ge=1, description="Bits per vector.")
        min_length: int = Field(1, ge=1, description="Shortest training sequence.")
        max_length: int = Field(10, ge=1, description="Longest training sequence.")
        eval_min_length: int | None = Field(
            None, ge=1, description="Shortest held-out sequence (default: min_length)."
        )
        eval_max_length: int | None = Field(
            None,
            ge=1,
            description="Longest held-out sequence (default: max_length); may exceed it.",
        )
        eval_size: int = Field(256, ge=1, description="Number of held-out sequences.")
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the longest length grows linearly "
            "from min_length to max_length (0: no curriculum).",
        )

        @model_validator(mode="after")
        def _check_ranges(self) -> CopyTask.Config:
            check_range("min_length", self.min_length, "max_length", self.max_length)
            lo = self.eval_min_length or self.min_length
            hi = self.eval_max_length or self.max_length
            check_range("eval_min_length", lo, "eval_max_length", hi)
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_size = config.width + 1
        self.output_size = config.width

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or ``eval_size`` held-out sequences in batches."""
        c = self.config
        held_out = (c.eval_min_length or c.min_length, c.eval_max_length or c.max_length)
        return ranged_batches(
            split,
            batch_size,
            generator,
            lambda size, ranges, gen: self.sample(size, *ranges[0], gen),
            [(c.min_length, c.max_length)],
            [held_out],
            c.eval_size,
            c.curriculum_steps,
        )

    def sample(
        self, batch_size: int, min_length: int, max_length: int, generator: torch.Generator
    ) -> Batch:
        """One batch with lengths uniform in ``[min_length, max_length]``."""
        width = self.config.width
        lengths = uniform_ints(min_length, max_length, batch_size, generator)
        longest = int(lengths.max())
        steps = 2 * longest + 1
        bits = random_bits((longest, batch_size, width), generator)
        t = torch.arange(steps).unsqueeze(1)  # (T, 1)
        length = lengths.unsqueeze(0)  # (1, B)
        reading = (t < length).float()  # (T, B)
        inputs = torch.zeros(steps, batch_size, width + 1)
        inputs[:longest, :, :width] = bits * reading[:longest].unsqueeze(-1)
        inputs[..., width] = (t == length).float()
        mask = ((t > length) & (t <= 2 * length)).float()
        source = (t - length - 1).clamp(0, longest - 1)  # (T, B): which input step to echo
        targets = bits.gather(0, source.unsqueeze(-1).expand(steps, batch_size, width))
        targets = targets * mask.unsqueeze(-1)
        return Batch(inputs, targets, mask)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Binary cross-entropy over scored bits; ``outputs`` are logits ``(T, B, width)``."""
        return masked_bce(outputs, batch.targets, batch.mask)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``bit_errors`` per sequence and ``sequence_accuracy``."""
        return error_metrics(outputs, batch.targets, batch.mask)
