"""nma-tasks: first-party tasks, registered through the entry-point group ``nma``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_tasks.algorithmic_stream import AlgorithmicStreamTask
from nma_tasks.associative_recall import AssociativeRecallTask
from nma_tasks.babi import BabiTask
from nma_tasks.copy import CopyTask
from nma_tasks.kg_completion import KgCompletionTask
from nma_tasks.knowledge import KnowledgeTask
from nma_tasks.logical import LogicalTask
from nma_tasks.permuted_digits import PermutedDigitsTask
from nma_tasks.priority_sort import PrioritySortTask
from nma_tasks.repeat_copy import RepeatCopyTask
from nma_tasks.split_digits import SplitDigitsTask
from nma_tasks.temporal import TemporalTask

__all__ = [
    "AlgorithmicStreamTask",
    "AssociativeRecallTask",
    "BabiTask",
    "CopyTask",
    "KgCompletionTask",
    "KnowledgeTask",
    "LogicalTask",
    "PermutedDigitsTask",
    "PrioritySortTask",
    "RepeatCopyTask",
    "SplitDigitsTask",
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
    register("permuted-digits", PermutedDigitsTask)
    register("split-digits", SplitDigitsTask)
    register("algorithmic-stream", AlgorithmicStreamTask)
