"""The default metric of :class:`ContinualLearningTrainer`: classification accuracy."""

from __future__ import annotations

from torch import Tensor

from nma.errors import UsageError
from nma.task import Ratio


def classification_accuracy(outputs: Tensor, targets: Tensor) -> Ratio:
    """The share of predictions ``argmax(outputs, -1)`` equal to ``targets`` (class
    indices), as a :class:`nma.Ratio` (so it is exact over batches of any size).

    ``outputs`` ``(B, ..., C)`` scores, ``targets`` ``(B, ...)`` class indices.
    """
    predicted = outputs.argmax(dim=-1)
    if predicted.shape != targets.shape:
        raise UsageError(
            f"Classification accuracy compares argmax(outputs, -1), of shape "
            f"{tuple(predicted.shape)}, with the targets, of shape {tuple(targets.shape)}; they "
            f"differ. Pass output=nma.training.last_step for a sequence classifier, or a "
            f"metric=... of your own."
        )
    return Ratio(float((predicted == targets).sum()), float(targets.numel()))
