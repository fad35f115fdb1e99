"""The repeat-copy task of the Neural Turing Machine paper (Graves et al. 2014, §4.2)."""

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


class RepeatCopyTask(Task):
    """Read a sequence of random binary vectors and a repeat count ``R``; write the
    sequence ``R`` times, then an end marker.

    Encoding, for a sequence of length ``L`` repeated ``R`` times, in a batch of
    ``T = max(L·(R+1) + 2)`` steps:

    * inputs ``(T, B, width + 2)``: steps ``0..L-1`` carry the vectors on channels
      ``0..width-1``; step ``L`` sets channel ``width`` (delimiter) to 1 and channel
      ``width + 1`` (count) to ``R / max_repeats`` (the training maximum, so held-out
      counts above it give values above 1); every other entry is 0;
    * targets ``(T, B, width + 1)``: step ``L + 1 + k`` for ``k = 0..R·L-1`` carries
      vector ``k mod L`` on channels ``0..width-1`` (channel ``width`` 0); step
      ``L + R·L + 1`` sets channel ``width`` (end marker) to 1, the vector channels 0;
    * mask ``(T, B)``: 1 on steps ``L+1..L+R·L+1`` (the copies and the end marker):
      every channel of those steps is scored, so the end marker must stay 0 during
      the copies and the vector channels 0 at the end.

    Lengths and counts are drawn independently and uniformly from ``[min_length,
    max_length]`` and ``[min_repeats, max_repeats]`` in training, and from the
    ``eval_*`` ranges (by default the training ranges; they may exceed them) for the
    ``eval_size`` held-out sequences.

    Curriculum: with ``curriculum_steps = N > 0``, training batch ``i`` (from 0)
    draws lengths up to ``min_length + ⌊(max_length - min_length)·i/N⌋`` and counts
    up to ``min_repeats + ⌊(max_repeats - min_repeats)·i/N⌋``; from batch ``N`` on,
    the full ranges.

    Loss: binary cross-entropy of the output logits, averaged over scored bits.
    Metrics: ``bit_errors``, the mean number of wrong bits per sequence (each output
    thresholded at 0.5; the end-marker channel included); ``sequence_accuracy``, the
    share of sequences without a wrong bit.
    """

    main_metric = "bit_errors"
    main_metric_mode = "min"

    class Config(Options):
        width: int = Field(8, ge=1, description="Bits per vector.")
        min_length: int = Field(1, ge=1, description="Shortest training sequence.")
        max_length: int = Field(10, ge=1, description="Longest training sequence.")
        min_repeats: int = Field(1, ge=1, description="Fewest copies in training.")
        max_repeats: int = Field(
            10, ge=1, description="Most copies in training; the count input is R / max_repeats."
        )
        eval_min_length: int | None = Field(
            None, ge=1, description="Shortest held-out sequence (default: min_length)."
        )
        eval_max_length: int | None = Field(
            None,
            ge=1,
            description="Longest held-out sequence (default: max_length); may exceed it.",
        )
        eval_min_repeats: int | None = Field(
            None, ge=1, description="Fewest held-out copies (default: min_repeats)."
        )
        eval_max_repeats: int | None = Field(
            None,
            ge=1,
            description="Most held-out copies (default: max_repeats); may exceed it.",
        )
        eval_size: int = Field(256, ge=1, description="Number of held-out sequences.")
        curriculum_steps: int = Field(
            0,
            ge=0,
            description="Training batches over which the longest length and the largest "
            "count grow linearly from their minimum to their maximum (0: no curriculum).",
        )

        @model_validator(mode="after")
        def _check_ranges(self) -> RepeatCopyTask.Config:
            check_range("min_length", self.min_length, "max_length", self.max_length)
            check_range("min_repeats", self.min_repeats, "max_repeats", self.max_repeats)
            check_range(
                "eval_min_length",
                self.eval_min_length or self.min_length,
                "eval_max_length",
                self.eval_max_length or self.max_length,
            )
            check_range(
                "eval_min_repeats",
                self.eval_min_repeats or self.min_repeats,
                "eval_max_repeats",
                self.eval_max_repeats or self.max_repeats,
            )
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_size = config.width + 2
        self.output_size = config.width + 1

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or ``eval_size`` held-out sequences in batches."""
        c = self.config
        lengths = (c.eval_min_length or c.min_length, c.eval_max_length or c.max_length)
        repeats = (c.eval_min_repeats or c.min_repeats, c.eval_max_repeats or c.max_repeats)
        return ranged_batches(
            split,
            batch_size,
            generator,
            lambda size, ranges, gen: self.sample(size, ranges[0], ranges[1], gen),
            [(c.min_length, c.max_length), (c.min_repeats, c.max_repeats)],
            [lengths, repeats],
            c.eval_size,
            c.curriculum_steps,
        )

    def sample(
        self,
        batch_size: int,
        lengths: tuple[int, int],
        repeats: tuple[int, int],
        generator: torch.Generator,
    ) -> Batch:
        """One batch with lengths uniform in ``lengths`` and counts uniform in
        ``repeats`` (both inclusive ``(low, high)`` ranges)."""
        width = self.config.width
        length = uniform_ints(*lengths, batch_size, generator).unsqueeze(0)  # (1, B)
        count = uniform_ints(*repeats, batch_size, generator).unsqueeze(0)  # (1, B)
        longest = int(length.max())
        end = length + count * length + 1  # (1, B): the end-marker step
        steps = int(end.max()) + 1
        bits = random_bits((longest, batch_size, width), generator)

        t = torch.arange(steps).unsqueeze(1)  # (T, 1)
        inputs = torch.zeros(steps, batch_size, width + 2)
        inputs[:longest, :, :width] = bits * (t[:longest] < length).unsqueeze(-1)
        delimiter = (t == length).float()  # (T, B)
        inputs[..., width] = delimiter
        inputs[..., width + 1] = delimiter * count / self.config.max_repeats

        k = t - length - 1  # (T, B): index into the repeated output
        copying = (k >= 0) & (t < end)
        source = torch.where(copying, k % length, 0)  # (T, B): which input step to echo
        targets = torch.zeros(steps, batch_size, width + 1)
        echoed = bits.gather(0, source.unsqueeze(-1).expand(steps, batch_size, width))
        targets[..., :width] = echoed * copying.unsqueeze(-1)
        targets[..., width] = (t == end).float()
        mask = (copying | (t == end)).float()
        return Batch(inputs, targets, mask)

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Binary cross-entropy over scored bits; ``outputs`` are logits ``(T, B, width+1)``."""
        return masked_bce(outputs, batch.targets, batch.mask)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``bit_errors`` per sequence and ``sequence_accuracy``."""
        return error_metrics(outputs, batch.targets, batch.mask)
