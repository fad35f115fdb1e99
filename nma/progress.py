"""The progress display of training: step, loss, main metric, speed, time left.

Rich in a terminal (:class:`TrainProgress`); tqdm's notebook widget in a Jupyter
notebook when tqdm is installed (:class:`TqdmProgress`). Both trainers, the CLI's and
the Python API's, open theirs with :func:`progress_display` and :func:`showing`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from types import TracebackType
from typing import Any

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
        total: the last step of the run (``None`` if unknown).
        start: the step training starts from (non-zero when resuming).
        metric: the name of the task's main metric.
    """

    def __init__(self, console: Console, total: int | None, start: int, metric: str) -> None:
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


class TqdmProgress:
    """:class:`TrainProgress`'s interface on a ``tqdm.auto`` bar (a widget in notebooks).

    Args:
        tqdm: the ``tqdm`` class to draw with.
        total: the last step (``None`` if unknown).
        start: the step training starts from.
        metric: the name of the main metric.
    """

    def __init__(self, tqdm: Any, total: int | None, start: int, metric: str) -> None:
        self.metric = metric
        self._tqdm = tqdm
        self._bar: Any = None
        self._total, self._start = total, start
        self._fields: dict[str, str] = {}

    def __enter__(self) -> TqdmProgress:
        self._bar = self._tqdm(total=self._total, initial=self._start, unit="step")
        return self

    def __exit__(self, *args: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def advance(self, step: int, loss: float | None = None, metric: float | None = None) -> None:
        """Move to ``step`` and show the latest values, where given."""
        if loss is not None:
            self._fields["loss"] = f"{loss:.4f}"
        if metric is not None:
            self._fields[self.metric] = f"{metric:.4g}"
        if self._bar is None:
            return
        self._bar.update(step - self._bar.n)
        self._bar.set_postfix(self._fields, refresh=False)

    def print(self, message: str) -> None:
        """Print a line above the bar (Rich markup removed)."""
        from rich.text import Text

        self._tqdm.write(Text.from_markup(message).plain)


Display = TrainProgress | TqdmProgress


def in_notebook() -> bool:
    """Whether this process is a Jupyter kernel (IPython's ``ZMQInteractiveShell``)."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython else None
    return type(shell).__name__ == "ZMQInteractiveShell"


def progress_display(
    console: Console, total: int | None, start: int, metric: str, notebook: bool | None = None
) -> Display:
    """The display of a training loop: tqdm in a notebook (``notebook=None``: detected)
    when tqdm is installed, else Rich on ``console``."""
    if in_notebook() if notebook is None else notebook:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return TqdmProgress(tqdm, total, start, metric)
    return TrainProgress(console, total, start, metric)


@contextlib.contextmanager
def showing(progress: Display, enabled: bool) -> Iterator[Display]:
    """Draw ``progress`` for the duration of the block when ``enabled``; otherwise
    draw no bar (its :meth:`~TrainProgress.print` lines still appear)."""
    if not enabled:
        yield progress
        return
    with progress:
        yield progress
