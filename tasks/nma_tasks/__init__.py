"""nma-tasks: first-party tasks, registered through the entry-point group ``nma``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_tasks.associative_recall import AssociativeRecallTask
from nma_tasks.babi import BabiTask
from nma_tasks.copy import CopyTask
from nma_tasks.priority_sort import PrioritySortTask
from nma_tasks.repeat_copy import RepeatCopyTask

__all__ = [
    "AssociativeRecallTask",
    "BabiTask",
    "CopyTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "nma_register_tasks",
]


@hookimpl
def nma_register_tasks(register: Register) -> None:
    """Register the first-party tasks."""
    register("copy", CopyTask)
    register("repeat-copy", RepeatCopyTask)
    register("associative-recall", AssociativeRecallTask)
    register("priority-sort", PrioritySortTask)
    register("babi", BabiTask)
