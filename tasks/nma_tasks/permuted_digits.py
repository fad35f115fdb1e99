"""Permuted digits: the permuted-MNIST benchmark on scikit-learn's 8×8 digits."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from nma_tasks.digits import DigitSet, DigitStream
from nma_tasks.digits_data import CLASSES, SIDE


class PermutedDigitsTask(DigitStream):
    """Every experience is the whole ten-class digit problem with the 64 pixels
    shuffled by a permutation of its own (Goodfellow et al. 2013; Kirkpatrick et al.
    2017; Lopez-Paz & Ranzato 2017's "MNIST permutations").

    Permutation ``i`` is the ``i``-th drawn by ``torch.randperm(64)`` from a generator
    seeded with ``seed`` (so fixed per experience, different across experiences);
    with ``first_identity`` experience 0 keeps the pixels in place. The permuted
    image is read one row of 8 pixels per step (see :func:`nma_tasks.digits.encode`);
    every experience has the same held-out images, permuted its way. All ten classes
    are allowed in every experience.
    """

    class Config(DigitStream.Config):
        first_identity: bool = Field(False, description="Experience 0 sees the digits unpermuted.")

    def __init__(self, config: Config) -> None:
        gen = torch.Generator().manual_seed(config.seed)
        self.permutations = [
            torch.randperm(SIDE * SIDE, generator=gen) for _ in range(config.num_experiences)
        ]
        if config.first_identity:
            self.permutations[0] = torch.arange(SIDE * SIDE)
        super().__init__(config)

    def experience(self, index: int, pixels: Tensor, labels: Tensor) -> DigitSet:
        """All images, permuted by permutation ``index``."""
        allowed = torch.ones(len(labels), CLASSES, dtype=torch.bool)
        return DigitSet(pixels[:, self.permutations[index]], labels, allowed)

    def experience_names(self) -> list[str]:
        """``perm 0``, ``perm 1``, ..."""
        return [f"perm {i}" for i in self.indices()]
