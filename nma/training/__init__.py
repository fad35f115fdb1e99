"""Trainers for your own data, on ordinary PyTorch ``DataLoader``s.

* :class:`MemoryTrainer`: epochs over ``(inputs, targets)`` batches with progress,
  gradient clipping, regularizers, checkpoints (resumable) and early stopping.
* :class:`ContinualLearningTrainer`: tasks one after another, keeping the accuracy
  matrix and ACC, BWT, FWT and forgetting.

Both train with the functions of :mod:`nma.loop`, the loop of ``nma run``. See
docs/python-api.md.
"""

from __future__ import annotations

from nma.training.accuracy import classification_accuracy
from nma.training.adapters import last_step, model_output
from nma.training.continual_trainer import ContinualLearningTrainer
from nma.training.early_stopping import EarlyStopping
from nma.training.history import History
from nma.training.memory_trainer import MemoryTrainer

__all__ = [
    "ContinualLearningTrainer",
    "EarlyStopping",
    "History",
    "MemoryTrainer",
    "classification_accuracy",
    "last_step",
    "model_output",
]
