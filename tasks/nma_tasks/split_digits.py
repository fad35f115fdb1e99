"""Split digits: the split-MNIST benchmark on scikit-learn's 8×8 digits."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import Tensor

from nma_tasks.digits import DigitSet, DigitStream
from nma_tasks.digits_data import CLASSES


class SplitDigitsTask(DigitStream):
    """The ten classes split into ``num_experiences`` disjoint groups, learned one
    group after another (Zenke et al. 2017's split MNIST; van de Ven & Tolias 2019's
    scenarios).

    Classes ``0..9`` (shuffled with ``seed`` when ``shuffle_classes``) are cut into
    consecutive groups as even as possible (5 experiences: {0,1}, {2,3}, ...).
    Experience ``i`` holds the images of group ``i``.

    ``scenario``: ``task`` (task-incremental: the answer is chosen among the
    experience's own classes, as with a separate head per experience; the setting of
    Lopez-Paz & Ranzato 2017, where task descriptors are given) or ``class``
    (class-incremental: among all ten classes, which the model must tell apart
    without being told the experience).
    """

    class Config(DigitStream.Config):
        scenario: Literal["task", "class"] = Field(
            "task",
            description="task: answer among the experience's classes; class: among all ten.",
        )
        shuffle_classes: bool = Field(
            False, description="Shuffle the class order with the seed before splitting."
        )

    def __init__(self, config: Config) -> None:
        order = torch.arange(CLASSES)
        if config.shuffle_classes:
            gen = torch.Generator().manual_seed(config.seed)
            order = order[torch.randperm(CLASSES, generator=gen)]
        self.groups = [g.tolist() for g in torch.tensor_split(order, config.num_experiences)]
        super().__init__(config)

    def experience(self, index: int, pixels: Tensor, labels: Tensor) -> DigitSet:
        """The images of group ``index``; allowed: the group, or all classes."""
        group = torch.tensor(self.groups[index])
        members = torch.isin(labels, group)
        allowed = torch.zeros(int(members.sum()), CLASSES, dtype=torch.bool)
        if self.config.scenario == "task":
            allowed[:, group] = True
        else:
            allowed[:] = True
        return DigitSet(pixels[members], labels[members], allowed)

    def experience_names(self) -> list[str]:
        """``digits 0-1``, ..."""
        return ["digits " + "-".join(str(c) for c in group) for group in self.groups]
