"""nma-tasks: first-party tasks, registered through the entry-point group ``nma``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_tasks.associative_recall import AssociativeRecallTask
from nma_tasks.babi import BabiTask
from nma_tasks.copy import CopyTask
from nma_tasks.kg_completion import KgCompletionTask
from nma_tasks.knowledge import KnowledgeTask
from nma_tasks.logical import LogicalTask
from nma_tasks.priority_sort import PrioritySortTask
from nma_tasks.repeat_copy import RepeatCopyTask
from nma_tasks.temporal import TemporalTask

__all__ = [
    "AssociativeRecallTask",
    "BabiTask",
    "CopyTask",
    "KgCompletionTask",
    "KnowledgeTask",
    "LogicalTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "TemporalTask",
    "nma_register_tasks",
]


@hookimpl
def nma_register_tasks(register: Register) -> None:
    """Register the first-party tasks."""
    register("copy", CopyTask)
    register("babi", BabiTask)
    register("logical", LogicalTask)
    register("temporal", TemporalTask)
    register("knowledge", KnowledgeTask)
    register("repeat-copy", RepeatCopyTask)
    register("associative-recall", AssociativeRecallTask)
    register("priority-sort", PrioritySortTask)
    register("kg-completion", KgCompletionTask)
