"""Digit streams: the images of scikit-learn's digits read one row per step.

Shared by ``permuted-digits`` and ``split-digits``; each experience is a set of
``(pixels, label, allowed classes)`` triples, for training and held out.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from pydantic import Field
from torch import Tensor

from nma import Batch, Options, Split, StreamTask
from nma_tasks.digits_data import CLASSES, SIDE, load_digits, split_indices

STEPS = SIDE + 1
"""Eight steps of eight pixels, then the answer step."""


@dataclass(frozen=True)
class DigitSet:
    """Images of one experience: ``pixels (N, 64)`` in [0, 1], ``labels (N,)``,
    ``allowed (N, 10)`` (the classes the answer is chosen among)."""

    pixels: Tensor
    labels: Tensor
    allowed: Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: Tensor) -> DigitSet:
        """The images ``index``."""
        return DigitSet(self.pixels[index], self.labels[index], self.allowed[index])


def encode(data: DigitSet) -> Batch:
    """Images as sequences: step ``t < 8`` carries pixel row ``t`` (after the
    experience's permutation, if any) on channels 0..7; step 8 sets channel 8 (the
    answer cue); the answer is read at step 8 alone (mask 1 there).

    Targets ``(9, B, 10)``: at step 8, 1 for the label, 0 for the other allowed
    classes, -1 for classes not allowed in this experience (left out of the softmax);
    0 elsewhere.
    """
    n = len(data)
    inputs = torch.zeros(STEPS, n, SIDE + 1)
    inputs[:SIDE, :, :SIDE] = data.pixels.view(n, SIDE, SIDE).transpose(0, 1)
    inputs[SIDE, :, SIDE] = 1.0
    answer = torch.where(data.allowed, 0.0, -1.0)
    answer[torch.arange(n), data.labels] = 1.0
    targets = torch.zeros(STEPS, n, CLASSES)
    targets[SIDE] = answer
    mask = torch.zeros(STEPS, n)
    mask[SIDE] = 1.0
    return Batch(inputs, targets, mask)


def allowed_logits(outputs: Tensor, targets: Tensor) -> Tensor:
    """``outputs`` with the classes not allowed (target -1) pushed to -1e9."""
    return outputs.masked_fill(targets < 0, -1e9)


class DigitStream(StreamTask):
    """Common part of the digit streams: data, encoding, loss and accuracy.

    Loss: cross-entropy of the answer step's logits over the allowed classes.
    Metric: ``accuracy``, the share of images whose arg-max over the allowed classes
    is the label.
    """

    class Config(Options):
        num_experiences: int = Field(5, ge=1, le=CLASSES, description="Experiences.")
        test_fraction: float = Field(
            0.25, gt=0, lt=1, description="Share of each class's images held out."
        )
        seed: int = Field(0, ge=0, description="Seed of the held-out split and the stream.")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.num_experiences = config.num_experiences
        self.input_size = SIDE + 1
        self.output_size = CLASSES
        images, labels = load_digits()
        train, test = split_indices(labels, config.test_fraction, config.seed)
        pixels = images.flatten(1)
        self._train = [self.experience(i, pixels[train], labels[train]) for i in self.indices()]
        self._test = [self.experience(i, pixels[test], labels[test]) for i in self.indices()]

    def indices(self) -> range:
        """``0 .. num_experiences - 1``."""
        return range(self.num_experiences)

    def experience(self, index: int, pixels: Tensor, labels: Tensor) -> DigitSet:
        """The images of experience ``index`` among ``pixels (N, 64)``, ``labels``."""
        raise NotImplementedError

    def data(self, split: Split, experience: int) -> DigitSet:
        """All images of ``experience`` in ``split``."""
        self.check_experience(experience)
        return (self._train if split == "train" else self._test)[experience]

    def batches(
        self,
        split: Split,
        batch_size: int,
        generator: torch.Generator,
        experience: int | None = None,
    ) -> Iterator[Batch]:
        """Training: endless batches of images drawn uniformly (with replacement)
        from the experience, or, for ``experience=None``, each image from a uniformly
        drawn experience. Held out: the experience's images in order (all
        experiences one after another for ``None``)."""
        self.check_experience(experience)
        if split == "train":
            return self._train_batches(batch_size, generator, experience)
        if split == "eval":
            return self._eval_batches(batch_size, experience)
        raise ValueError(f"unknown split {split!r}")

    def _train_batches(
        self, batch_size: int, generator: torch.Generator, experience: int | None
    ) -> Iterator[Batch]:
        while True:
            if experience is not None:
                data = self._train[experience]
                index = torch.randint(len(data), (batch_size,), generator=generator)
                yield encode(data.take(index))
                continue
            which = torch.randint(self.num_experiences, (batch_size,), generator=generator)
            position = torch.rand(batch_size, generator=generator)
            parts = []
            for e in self.indices():
                data = self._train[e]
                index = (position[which == e] * len(data)).long().clamp_max(len(data) - 1)
                parts.append(data.take(index))
            order = torch.cat([(which == e).nonzero().squeeze(1) for e in self.indices()])
            fields = zip(*(_fields(p) for p in parts), strict=True)
            joined = DigitSet(*(torch.cat(t) for t in fields))
            yield encode(joined.take(order.argsort()))

    def _eval_batches(self, batch_size: int, experience: int | None) -> Iterator[Batch]:
        chosen = self.indices() if experience is None else [experience]
        for e in chosen:
            data = self._test[e]
            for start in range(0, len(data), batch_size):
                yield encode(data.take(torch.arange(start, min(start + batch_size, len(data)))))

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """Mean cross-entropy over the answer steps, among the allowed classes."""
        logp = allowed_logits(outputs, batch.targets).log_softmax(dim=-1)
        nll = -(logp * (batch.targets > 0)).sum(dim=-1)  # (T, B)
        return (nll * batch.mask).sum() / batch.mask.sum().clamp_min(1.0)

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, float]:
        """``accuracy``: the share of images answered right."""
        guess = allowed_logits(outputs, batch.targets).argmax(dim=-1)  # (T, B)
        right = (batch.targets.argmax(dim=-1) == guess).float() * batch.mask
        per_sequence = right.sum(0) / batch.mask.sum(0).clamp_min(1.0)
        return {"accuracy": per_sequence.mean().item()}


def _fields(data: DigitSet) -> tuple[Tensor, Tensor, Tensor]:
    return data.pixels, data.labels, data.allowed
