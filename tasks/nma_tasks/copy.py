"""The copy task of the Neural Turing Machine paper (Graves et al. 2014, §4.1)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from nma import Batch, Options, Split, Task


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
    longer sequences is measured by raising ``eval_max_length``.

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
            None, ge=1, description="Longest held-out sequence (default: max_length)."
        )
        eval_size: int = Field(256, ge=1, description="Number of held-out sequences.")

        @model_validator(mode="after")
        def _check_ranges(self) -> CopyTask.Config:
            if self.min_length > self.max_length:
                raise ValueError(
                    f"min_length ({self.min_length}) exceeds max_length ({self.max_length})"
                )
            lo = self.eval_min_length or self.min_length
            hi = self.eval_max_length or self.max_length
            if lo > hi:
                raise ValueError(f"eval_min_length ({lo}) exceeds eval_max_length ({hi})")
            return self

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.input_size = config.width + 1
        self.output_size = config.width

    def batches(self, split: Split, batch_size: int, generator: torch.Generator) -> Iterator[Batch]:
        """Endless training batches, or ``eval_size`` held-out sequences in batches."""
        c = self.config
        if split == "train":
            while True:
                yield self.sample(batch_size, c.min_length, c.max_length, generator)
        elif split == "eval":
            lo = c.eval_min_length or c.min_length
            hi = c.eval_max_length or c.max_length
            remaining = c.eval_size
            while remaining > 0:
                size = min(batch_size, remaining)
                yield self.sample(size, lo, hi, generator)
                remaining -= size
        else:
            raise ValueError(f"unknown split {split!r}")

    def sample(
        self, batch_size: int, min_length: int, max_length: int, generator: torch.Generator
    ) -> Batch:
        """One batch with lengths uniform in ``[min_length, max_length]``."""
        width = self.config.width
        lengths = torch.randint(min_length, max_length + 1, (batch_size,), generator=generator)
        longest = int(lengths.max())
        steps = 2 * longest + 1
        bits = torch.randint(0, 2, (longest, batch_size, width), generator=generator).float()
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
        bce = F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none")
        scored = batch.mask.unsqueeze(-1)
        return (bce * scored).sum() / (scored.sum() * outputs.shape[-1]).clamp_min(1.0)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``bit_errors`` per sequence and ``sequence_accuracy``."""
        wrong = ((outputs > 0).float() != batch.targets).float() * batch.mask.unsqueeze(-1)
        per_sequence = wrong.sum(dim=(0, 2))  # (B,)
        return {
            "bit_errors": per_sequence.mean().item(),
            "sequence_accuracy": (per_sequence == 0).float().mean().item(),
        }
