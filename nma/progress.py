"""The Rich progress display of training: step, loss, main metric, speed, time left."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _SpeedColumn(ProgressColumn):
    """Steps per second over Rich's recent window."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- steps/s" if speed is None else f"{speed:.1f} steps/s", style="cyan")


class TrainProgress:
    """A progress bar over optimiser steps with the latest loss and main metric.

    Args:
        console: where to draw (stderr-like consoles are fine).
        total: the last step of the run.
        start: the step training starts from (non-zero when resuming).
        metric: the name of the task's main metric.
    """

    def __init__(self, console: Console, total: int, start: int, metric: str) -> None:
        self.metric = metric
        self._progress = Progress(
            TextColumn("[bold]step"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[metric]}"),
            _SpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("left"),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            "train", total=total, completed=start, loss="-", metric=f"{metric} -"
        )

    def __enter__(self) -> TrainProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def advance(self, step: int, loss: float | None = None, metric: float | None = None) -> None:
        """Move to ``step`` and show the latest values, where given."""
        fields: dict[str, str] = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if metric is not None:
            fields["metric"] = f"{self.metric} {metric:.4g}"
        self._progress.update(self._task, completed=step, **fields)

    def print(self, message: str) -> None:
        """Print a line above the bar."""
        self._progress.console.print(message)
