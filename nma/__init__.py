"""nma — Neural Memory Architectures.

The public API that plugins build on: the five component interfaces (and streams,
tasks in experiences), the options base class, the batch type and its helpers, the
hook marker and the errors.
"""

from __future__ import annotations

from nma.addressing import Addressing
from nma.continual import ContinualLearningModel
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

__all__ = [
    "Addressing",
    "AddressingFactory",
    "Batch",
    "ContinualLearningModel",
    "Ratio",
    "Controller",
    "Memory",
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
