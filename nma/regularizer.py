"""The ``Regularizer`` interface: training-time terms and strategies."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import torch
from torch import Tensor, nn

from nma.options import Options
from nma.task import Batch, Task


class Regularizer:
    """A term added to the loss, or a change to training (continual learning, ...).

    Every method has a harmless default, so a subclass overrides only what it uses.
    State that must survive a checkpoint goes in :meth:`state_dict` as tensors.
    """

    Config: ClassVar[type[Options]] = Options

    def __init__(self, config: Options) -> None:
        self.config = config
        self.task: Task | None = None

    def bind(self, task: Task) -> None:
        """Called once the run's task is built, before training: methods that score
        stored or fresh samples (EWC's Fisher, GEM's memories) use ``task.loss``."""
        self.task = task

    def penalty(self, model: nn.Module) -> Tensor | None:
        """A scalar added to the task loss, or ``None`` for no penalty."""
        return None

    def augment(self, batch: Batch) -> Batch:
        """Change a training batch before it is used (e.g. mix in rehearsed samples)."""
        return batch

    def after_backward(self, model: nn.Module) -> None:
        """Edit gradients after ``backward()`` and before the optimiser step."""

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Called when training on one experience of a stream ends (e.g. EWC's Fisher).

        ``batches`` is an endless stream of the finished experience's training data,
        drawn afresh from the run's seed; take as many as the method needs. The model
        is in training mode; leave it so.
        """

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Tensors to save in checkpoints."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned."""
