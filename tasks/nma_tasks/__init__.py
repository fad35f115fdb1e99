"""nma-tasks: first-party tasks, registered through the entry-point group ``nma``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_tasks.copy import CopyTask

__all__ = ["CopyTask", "nma_register_tasks"]


@hookimpl
def nma_register_tasks(register: Register) -> None:
    """Register the first-party tasks."""
    register("copy", CopyTask)
