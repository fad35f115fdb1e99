"""The ``--quick`` sizes shared by the experiments: a tiny model, a few steps, a small
held-out set, one evaluation at the end. Meant to finish in seconds on one CPU core
while still exercising training, evaluation and every figure."""

from __future__ import annotations

from typing import Any

QUICK_TRAIN: dict[str, Any] = {
    "train.steps": 20,
    "train.batch_size": 8,
    "train.eval_every": 0,
    "train.checkpoint_every": 0,
    "train.log_every": 5,
    "train.eval_batch_size": 16,
    "task.eval_size": 16,
}
"""Twenty steps of batch 8, evaluated once at the end on 16 held-out sequences."""

QUICK_MODEL: dict[str, Any] = {
    "memory.slots": 12,
    "memory.width": 6,
    "controller.hidden_size": 24,
}
"""A 12 × 6 memory and a controller of 24 units."""


def quick(**overrides: Any) -> dict[str, Any]:
    """The shared quick sizes with ``overrides`` (dotted keys written with ``__`` for
    the dot: ``task__max_length=4``)."""
    extra = {key.replace("__", "."): value for key, value in overrides.items()}
    return {**QUICK_TRAIN, **QUICK_MODEL, **extra}
