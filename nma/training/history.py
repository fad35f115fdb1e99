"""``History``: what :meth:`MemoryTrainer.train` returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class History:
    """The loss history of a training, one value per epoch.

    Attributes:
        train: the mean training loss of each epoch (over its batches, weighted by
            their sizes; the task loss alone, without regularizer penalties).
        val: the mean validation loss of each epoch (empty without a validation loader).
        stopped_early: early stopping ended the training before its last epoch.
        best_epoch: the epoch (from 0) of the lowest validation loss, ``None`` without one.
    """

    train: list[float] = field(default_factory=list)
    val: list[float] = field(default_factory=list)
    stopped_early: bool = False
    best_epoch: int | None = None

    @property
    def epochs(self) -> int:
        """Epochs trained."""
        return len(self.train)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), as kept in checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> History:
        """The history :meth:`to_dict` gave."""
        return cls(
            train=[float(v) for v in data.get("train", [])],
            val=[float(v) for v in data.get("val", [])],
            stopped_early=bool(data.get("stopped_early", False)),
            best_epoch=data.get("best_epoch"),
        )
