"""nma — Neural Memory Architectures.

The public API that plugins build on: the five component interfaces (and streams,
tasks in experiences), the options base class, the batch type and its helpers, the
hook marker and the errors; and, for your own data, the trainers
(:class:`MemoryTrainer`, :class:`ContinualLearningTrainer`, from :mod:`nma.training`)
and :class:`ContinualLearningModel` (from :mod:`nma.models`).
"""

from __future__ import annotations

from typing import Any

from nma.addressing import Addressing
from nma.continual import ContinualExperiment
from nma.continual_metrics import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
)
from nma.controller import Controller
from nma.errors import NmaError, PluginError, UsageError
from nma.garbage import collect_garbage
from nma.hookspecs import Register, hookimpl
from nma.memory import AddressingFactory, Memory
from nma.options import Options
from nma.persistence import load_memory, save_memory
from nma.regularizer import Regularizer
from nma.state import State, detach_state, map_state
from nma.stream import StreamTask, concat_batches, is_stream, pad_steps, select
from nma.task import Batch, Ratio, Split, Task

__version__ = "0.1.0"

_LAZY = {
    "ContinualLearningModel": "nma.models.continual_learning_model",
    "ContinualLearningTrainer": "nma.training",
    "MemoryTrainer": "nma.training",
}
"""Names imported on first use, so that ``import nma`` (and the CLI) stays quick."""


def __getattr__(name: str) -> Any:
    """The names of :data:`_LAZY`, imported on first access (PEP 562)."""
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nma' has no attribute {name!r}")


__all__ = [
    "Addressing",
    "AddressingFactory",
    "Batch",
    "ContinualExperiment",
    "ContinualLearningModel",
    "ContinualLearningTrainer",
    "Ratio",
    "Controller",
    "Memory",
    "MemoryTrainer",
    "NmaError",
    "Options",
    "PluginError",
    "Register",
    "Regularizer",
    "Split",
    "State",
    "StreamTask",
    "Task",
    "UsageError",
    "__version__",
    "average_accuracy",
    "backward_transfer",
    "forgetting",
    "forward_transfer",
    "collect_garbage",
    "concat_batches",
    "is_stream",
    "pad_steps",
    "select",
    "load_memory",
    "save_memory",
    "detach_state",
    "hookimpl",
    "map_state",
]
