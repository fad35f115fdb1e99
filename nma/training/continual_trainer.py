"""``ContinualLearningTrainer``: tasks one after another, with the accuracy matrix R.

``R[i][j]`` is the accuracy on task ``j``'s held-out data after training on tasks
``0..i`` and ``b[j]`` that of the untrained model (Lopez-Paz & Ranzato 2017, §2; see
:mod:`nma.continual_metrics`, whose ACC, BWT, FWT and forgetting are reported). The
training itself is :class:`MemoryTrainer`'s, so the loop is the one ``nma run`` uses,
with the same regularizer plugins and their ``end_experience`` hooks.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from nma.continual_metrics import (
    average_accuracy,
    backward_transfer,
    forgetting,
    forward_transfer,
)
from nma.continual_record import ContinualRecord
from nma.errors import UsageError
from nma.training.accuracy import classification_accuracy
from nma.training.adapters import Criterion, OutputFn
from nma.training.history import History
from nma.training.memory_trainer import MemoryTrainer, Metric
from nma.training.regularizers import RegularizerSpec

UNMEASURED = math.nan
"""An entry of R or b not measured: the task's held-out data was not known yet."""


class ContinualLearningTrainer:
    """Train a model on tasks in turn with continual-learning regularizers, keeping the
    accuracy matrix R and ACC, BWT, FWT and forgetting across :meth:`train_task` calls.

    Each task's accuracy is measured as soon as its held-out data is known and the
    model has changed: all known tasks before the first training (``b``), every known
    task after each training (a row of R), and a new task before its training (the
    entry ``R[i-1][i]`` above the diagonal that forward transfer needs). Entries never
    measured (a task whose held-out data came later) are NaN; give every task's
    held-out data up front (``eval_loaders``) for the full matrix and FWT.

    A model with a ``select_task(index)`` method (:class:`nma.models.ContinualLearningModel`)
    is told the task (its index in :attr:`task_ids`) before training on it and before
    each evaluation on it: one output head per task.

    Args:
        model: the ``nn.Module`` to train (see :class:`MemoryTrainer`).
        optimizer: an optimiser over its parameters; one for all tasks.
        criterion: ``loss = criterion(outputs, targets)``.
        regularizers: registered names (``"ewc"``, ``"si"``, ``"replay"``, ...),
            instances, or a dict name → options: the plugins of ``nma run
            --regularizer``; their ``end_experience`` runs after each task.
        device: as for :class:`MemoryTrainer`.
        eval_loaders: held-out data of tasks known in advance: a sequence (task ids
            0, 1, ...) or a dict id → loader, in the order they will be trained.
        metric: ``metric(outputs, targets)`` of one batch, a fraction (higher is better)
            or an :class:`nma.Ratio`; classification accuracy by default.
        output: what the criterion and the metric score (see :class:`MemoryTrainer`).
        progress: show progress and the matrix after each task.
        console: the Rich console to draw on.
        trainer_options: further keyword arguments of :class:`MemoryTrainer`
            (``grad_clip``, ``lr_schedule``, ``patience``, ...).

    Attributes:
        trainer: the :class:`MemoryTrainer` that trains every task.
        task_ids: the tasks known so far, in order (trained ones first).
        record: the :class:`~nma.continual_record.ContinualRecord` (names, b, R).
        histories: each trained task's :class:`History`, by id.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Criterion,
        regularizers: RegularizerSpec = None,
        device: str | torch.device = "auto",
        *,
        eval_loaders: Sequence[Iterable[Any]] | Mapping[Hashable, Iterable[Any]] | None = None,
        metric: Metric | None = None,
        output: OutputFn | None = None,
        progress: bool = True,
        console: Console | None = None,
        **trainer_options: Any,
    ) -> None:
        if "checkpoint_dir" in trainer_options:
            raise UsageError(
                "ContinualLearningTrainer does not write checkpoints yet; train each task with "
                "a MemoryTrainer of its own for checkpoints."
            )
        if metric is not None and not callable(metric):
            raise UsageError(
                f"metric must be callable as metric(outputs, targets), not {metric!r}."
            )
        self.trainer = MemoryTrainer(
            model,
            optimizer,
            criterion,
            device,
            output=output,
            regularizers=regularizers,
            progress=progress,
            console=console,
            **trainer_options,
        )
        self.metric: Metric = metric or classification_accuracy
        self.task_ids: list[Hashable] = []
        self.record = ContinualRecord(names=[], metric="accuracy")
        self.histories: dict[Hashable, History] = {}
        self._eval_loaders: dict[Hashable, Iterable[Any]] = {}
        if eval_loaders is not None:
            items = (
                eval_loaders.items()
                if isinstance(eval_loaders, Mapping)
                else enumerate(eval_loaders)
            )
            for task_id, loader in items:
                self._add_task(task_id, loader)

    @property
    def model(self) -> nn.Module:
        """The model being trained."""
        return self.trainer.model

    @property
    def regularizers(self) -> dict[str, Any]:
        """The regularizers by name."""
        return self.trainer.regularizers

    @property
    def accuracy_matrix(self) -> list[list[float]]:
        """R: row ``i`` after training the ``i``-th task, column ``j`` the task
        ``task_ids[j]``; NaN where not measured."""
        return [list(row) for row in self.record.rows]

    @property
    def initial_accuracy(self) -> list[float]:
        """b: each known task's accuracy before any training (NaN where not measured)."""
        return list(self.record.initial or [])

    def train_task(
        self,
        task_id: Hashable,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        epochs: int = 1,
    ) -> History:
        """Train on one task, then run the regularizers' ``end_experience`` and measure
        a row of R on every known task.

        Args:
            task_id: the task's name or number; each task is trained once.
            train_loader: its ``(inputs, targets)`` training batches.
            val_loader: its held-out batches: the validation loss of each epoch (early
                stopping) and, unless ``eval_loaders`` gave them, its column of R.
            epochs: epochs on this task.

        Returns:
            The task's :class:`History`.
        """
        self._check_next(task_id, val_loader)
        if task_id not in self._eval_loaders:
            assert val_loader is not None
            self._add_task(task_id, val_loader)
        if self.record.initial is None:
            self.record.initial = [self._accuracy(j) for j in range(len(self.task_ids))]
        elif self.record.rows:
            last = self.record.rows[-1]
            for j, value in enumerate(last):
                if math.isnan(value):
                    last[j] = self._accuracy(j)
        self._select(self.task_ids.index(task_id))
        history = self.trainer.train(train_loader, val_loader, epochs)
        self.trainer.end_experience(train_loader)
        self.histories[task_id] = history
        row = [self._accuracy(j) for j in range(len(self.task_ids))]
        self.record.rows.append(row)
        shown = " ".join(f"{v:.3f}" for v in row)
        if self.trainer.show_progress:
            self.trainer.console.print(f"[cyan]after task {task_id!r}[/cyan]: accuracy {shown}")
        return history

    def evaluate(self, task_id: Hashable) -> float:
        """The current model's accuracy (the metric) on ``task_id``'s held-out data."""
        if task_id not in self._eval_loaders:
            raise UsageError(f"Unknown task {task_id!r}; known tasks: {self.task_ids}.")
        return self._accuracy(self.task_ids.index(task_id))

    def metrics(self) -> dict[str, float]:
        """ACC, BWT and forgetting over the tasks trained so far, and FWT where b and
        the entries above R's diagonal were measured (:mod:`nma.continual_metrics` on
        the square of R over the trained tasks; an unmeasured entry above the
        diagonal cannot raise forgetting's maximum and counts as 0 there)."""
        k = len(self.record.rows)
        if k == 0:
            return {}
        square = [[0.0 if math.isnan(v) else v for v in row[:k]] for row in self.record.rows]
        out = {
            "acc": average_accuracy(square),
            "bwt": backward_transfer(square),
            "forgetting": forgetting(square),
        }
        b = self.initial_accuracy[:k]
        above = [self.record.rows[i - 1][i] for i in range(1, k)]
        if not any(math.isnan(v) for v in [*b, *above]):
            out["fwt"] = forward_transfer(square, b)
        return out

    def print(self, console: Console | None = None) -> None:
        """Print R (with b) and the metrics as Rich tables."""
        console = console or self.trainer.console
        console.print(self.record.table())
        table = Table(title="continual-learning metrics")
        values = self.metrics()
        for name in ("acc", "bwt", "fwt", "forgetting"):
            table.add_column(name.upper() if name != "forgetting" else name, justify="right")
        table.add_row(
            *(
                f"{values[k]:.3f}" if k in values else "–"
                for k in ("acc", "bwt", "fwt", "forgetting")
            )
        )
        console.print(table)

    def _add_task(self, task_id: Hashable, loader: Iterable[Any]) -> None:
        if loader is None or not hasattr(loader, "__iter__"):
            raise UsageError(
                f"The held-out data of task {task_id!r} must be a DataLoader of (inputs, "
                f"targets) batches, not {type(loader).__name__}."
            )
        if task_id in self._eval_loaders:
            raise UsageError(f"The task {task_id!r} is given twice.")
        self._eval_loaders[task_id] = loader
        self.task_ids.append(task_id)
        self.record.names.append(str(task_id))
        if self.record.initial is not None:
            self.record.initial.append(UNMEASURED)
        for row in self.record.rows:
            row.append(UNMEASURED)

    def _check_next(self, task_id: Hashable, val_loader: Iterable[Any] | None) -> None:
        if task_id in self.histories:
            raise UsageError(
                f"The task {task_id!r} is already trained; R keeps one row per task, each "
                f"trained once, in order."
            )
        trained = len(self.record.rows)
        if task_id in self._eval_loaders:
            expected = self.task_ids[trained]
            if task_id != expected:
                raise UsageError(
                    f"Train the tasks in the order their held-out data was given: next is "
                    f"{expected!r}, not {task_id!r}."
                )
        elif trained < len(self.task_ids):
            raise UsageError(
                f"The tasks {self.task_ids[trained:]} of eval_loaders come first; {task_id!r} "
                f"is not among them."
            )
        elif val_loader is None:
            raise UsageError(
                f"The task {task_id!r} needs held-out data for its column of the accuracy "
                f"matrix: pass val_loader (or give it in eval_loaders)."
            )

    def _select(self, index: int) -> None:
        select = getattr(self.model, "select_task", None)
        if callable(select):
            select(index)

    def _accuracy(self, index: int) -> float:
        """The metric on the task ``task_ids[index]``, with its head selected; the
        head in use before is selected again afterwards."""
        previous = getattr(self.model, "task", None)
        self._select(index)
        loader = self._eval_loaders[self.task_ids[index]]
        value = self.trainer.evaluate(loader, {"accuracy": self.metric})["accuracy"]
        if isinstance(previous, int):
            self._select(previous)
        return value
