"""``EarlyStopping``: stop when the validation loss has not improved for a while."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


@dataclass
class EarlyStopping:
    """Patience on the validation loss.

    An epoch improves when its validation loss is below ``best - min_delta``; training
    stops after ``patience`` epochs in a row without improvement (so with
    ``patience=2`` and losses 5, 4, 3, 3.5, 3.2 it stops after the fifth epoch).

    Attributes:
        patience: epochs without improvement before stopping, ``>= 1``.
        min_delta: the least decrease that counts as an improvement.
        best: the lowest validation loss so far.
        best_epoch: its epoch (from 0), ``-1`` before the first.
        bad_epochs: epochs since the last improvement.
    """

    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0

    def update(self, epoch: int, val_loss: float) -> bool:
        """Record epoch ``epoch``'s validation loss; whether to stop now."""
        if val_loss < self.best - self.min_delta:
            self.best, self.best_epoch, self.bad_epochs = val_loss, epoch, 0
        else:
            self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), as kept in checkpoints (``best`` ``None`` for infinity)."""
        data = asdict(self)
        data["best"] = None if math.isinf(self.best) else self.best
        return data

    def load(self, data: dict[str, Any]) -> None:
        """Restore the counters :meth:`to_dict` gave (patience and delta stay)."""
        best = data.get("best")
        self.best = math.inf if best is None else float(best)
        self.best_epoch = int(data.get("best_epoch", -1))
        self.bad_epochs = int(data.get("bad_epochs", 0))
