"""Helpers shared by the binary-sequence tasks (copy, repeat-copy, associative recall,
priority sort): option ranges, the curriculum ramp, the held-out split's batch sizes,
the masked binary cross-entropy and the bit-error count."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from nma import Batch


def check_range(low_name: str, low: int, high_name: str, high: int) -> None:
    """Raise a ``ValueError`` naming both options if ``low > high``."""
    if low > high:
        raise ValueError(f"{low_name} ({low}) exceeds {high_name} ({high})")


def ramp(index: int, steps: int, low: int, high: int) -> int:
    """The curriculum's upper limit for training batch ``index`` (counted from 0).

    Grows linearly from ``low`` (batch 0) to ``high`` (batch ``steps`` and after):
    ``low + floor((high - low) * index / steps)``. ``steps == 0`` disables the
    curriculum (always ``high``).
    """
    if steps <= 0 or index >= steps:
        return high
    return low + (high - low) * index // steps


def eval_batch_sizes(total: int, batch_size: int) -> Iterator[int]:
    """Sizes of the batches that hold ``total`` held-out sequences."""
    remaining = total
    while remaining > 0:
        size = min(batch_size, remaining)
        yield size
        remaining -= size


def uniform_ints(low: int, high: int, size: int, generator: torch.Generator) -> Tensor:
    """``size`` integers drawn uniformly from ``[low, high]`` (inclusive)."""
    return torch.randint(low, high + 1, (size,), generator=generator)


def random_bits(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    """A float tensor of independent fair random bits (0.0 or 1.0)."""
    return torch.randint(0, 2, shape, generator=generator).float()


def masked_bce(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Binary cross-entropy of logits ``outputs`` against ``targets`` ``(T, B, F)``,
    averaged over the bits of the steps where ``mask`` ``(T, B)`` is 1."""
    bce = F.binary_cross_entropy_with_logits(outputs, targets, reduction="none")
    scored = mask.unsqueeze(-1)
    return (bce * scored).sum() / (scored.sum() * outputs.shape[-1]).clamp_min(1.0)


def bit_errors(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Wrong bits per sequence ``(B,)``: each logit thresholded at 0 (probability 0.5),
    compared with the target on the scored steps."""
    wrong = ((outputs > 0).float() != targets).float() * mask.unsqueeze(-1)
    return wrong.sum(dim=(0, 2))


def error_metrics(outputs: Tensor, targets: Tensor, mask: Tensor) -> dict[str, float]:
    """``bit_errors`` (mean wrong bits per sequence) and ``sequence_accuracy`` (share of
    sequences without a wrong bit)."""
    per_sequence = bit_errors(outputs, targets, mask)
    return {
        "bit_errors": per_sequence.mean().item(),
        "sequence_accuracy": (per_sequence == 0).float().mean().item(),
    }


Range = tuple[int, int]


def ranged_batches(
    split: str,
    batch_size: int,
    generator: torch.Generator,
    sample: Callable[[int, list[Range], torch.Generator], Batch],
    train: Sequence[Range],
    held_out: Sequence[Range],
    eval_size: int,
    curriculum_steps: int,
) -> Iterator[Batch]:
    """The batches of a task whose difficulty is a few integer ranges (lengths,
    repeats, items): endless for ``"train"``, each range's upper end following the
    curriculum (:func:`ramp`); ``eval_size`` sequences drawn from ``held_out`` for
    ``"eval"``. ``sample(size, ranges, generator)`` draws one batch."""
    if split == "train":
        for index in itertools.count():
            ranges = [(lo, ramp(index, curriculum_steps, lo, hi)) for lo, hi in train]
            yield sample(batch_size, ranges, generator)
    elif split == "eval":
        for size in eval_batch_sizes(eval_size, batch_size):
            yield sample(size, list(held_out), generator)
    else:
        raise ValueError(f"unknown split {split!r}")
