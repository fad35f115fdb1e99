"""``MemoryTrainer``: train any model on ordinary PyTorch ``DataLoader``s.

The steps, the regularizers' hooks, the learning-rate schedule, evaluation, the
checkpoint cadence and the checkpoints' content are :mod:`nma.loop`'s, the same
functions ``nma run`` trains with.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import Tensor, nn

import nma
from nma.checkpoint import list_checkpoints, load_checkpoint
from nma.errors import UsageError
from nma.loop import (
    augment_batch,
    checkpoint_due,
    end_experience,
    evaluate_batches,
    lr_factor,
    optimizer_step,
    restore_training_state,
    rng_states,
    set_rng_states,
    training_checkpoint,
    write_checkpoint,
)
from nma.progress import Display, progress_display, showing
from nma.regularizer import Regularizer
from nma.task import Batch, MetricValue
from nma.training.adapters import (
    Criterion,
    CriterionTask,
    LoaderModel,
    OutputFn,
    endless_batches,
    loader_batch,
    loader_batches,
    model_output,
)
from nma.training.early_stopping import EarlyStopping
from nma.training.history import History
from nma.training.loader_state import (
    epoch_start_states,
    generator_states,
    restore_epoch_start,
    restore_generators,
)
from nma.training.regularizers import RegularizerSpec, resolve_regularizers
from nma.training.validate import check_trainer_arguments, resolve_device

VAL_PREFIX = "val/"
"""Where a checkpoint keeps the validation loader's generators."""

BEST_PREFIX = "best/"
"""Where a checkpoint keeps the best validation epoch's weights (``restore_best``)."""

Metric = Callable[[Tensor, Tensor], MetricValue]
"""``value = metric(outputs, targets)`` of one batch: a mean over its sequences, or a
:class:`nma.Ratio`."""


class MemoryTrainer:
    """Train a model on ``DataLoader``s of ``(inputs, targets)``: the loop of ``nma run``
    for your own data and any ``nn.Module`` (the models of :mod:`nma.models`, a network
    of your own with a :class:`~nma.layers.MemoryLayer` inside, ...).

    Each step: ``loss = criterion(output(model(inputs)), targets)`` plus the
    regularizers' penalties, backward, the global gradient norm clipped to
    ``grad_clip``, the regularizers' gradient edits, ``optimizer.step()``. After each
    epoch, the mean validation loss; early stopping with ``patience``, and with
    ``restore_best`` the weights of the best validation epoch put back. Progress is
    shown with Rich (tqdm's widget in a Jupyter notebook, when tqdm is installed).
    With ``checkpoint_dir``, safetensors checkpoints (model, optimiser, regularizers,
    random generators, history) are written at the end of each epoch and every
    ``checkpoint_every`` steps; ``train(..., resume=True)`` goes on from the latest
    to exactly the result of an uninterrupted training.

    Args:
        model: the ``nn.Module`` to train; moved to ``device``. Called on the loader's
            inputs as they come (batch-first: build nma's models with ``batch_first=True``).
        optimizer: an optimiser over the model's parameters.
        criterion: ``loss = criterion(outputs, targets)``, a scalar mean over the batch.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``, ``"cuda:N"``
            or a ``torch.device``.
        grad_clip: clip the global gradient norm to this; ``0`` disables.
        output: what the criterion scores, from what the model returns: by default
            the first element of a tuple (``outputs, state``) or the tensor returned;
            :func:`nma.training.last_step` for a sequence classifier's last step.
        regularizers: registered regularizer names, instances, or a dict name →
            options (see :func:`nma.training.regularizers.resolve_regularizers`).
        lr_schedule: ``"constant"`` (the optimiser's learning rates are left alone),
            ``"cosine"``: each group's learning rate falls from its initial value to
            ``lr_final_ratio`` times it along a half cosine over each :meth:`train`, or
            ``"step"``: it is multiplied by ``lr_step_factor`` every ``lr_step_every``
            steps of each :meth:`train`.
        lr_final_ratio: the cosine schedule's last share of the learning rate.
        lr_step_every: the step schedule's optimiser steps between two decays.
        lr_step_factor: the step schedule's factor of each decay.
        patience: stop after this many epochs without a validation loss below the
            best minus ``min_delta``; ``None``: no early stopping.
        min_delta: the least decrease of the validation loss that counts.
        restore_best: at the end of :meth:`train` (early stop or last epoch), load the
            weights of the epoch with the lowest validation loss (needs a
            ``val_loader``). They are kept as a copy on the CPU and in checkpoints, so
            a resumed training restores the same weights.
        checkpoint_dir: where checkpoints go; ``None``: none are written.
        checkpoint_every: also write one every this many steps; ``0``: per epoch only.
        keep_checkpoints: how many recent checkpoints to keep.
        progress: show the progress bar and a line per epoch.
        console: the Rich console to draw on (standard error by default).

    Attributes:
        history: the :class:`History` of the latest :meth:`train`.
        step: optimiser steps taken by this trainer.
        regularizers: the regularizers by name.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Criterion,
        device: str | torch.device = "auto",
        *,
        grad_clip: float = 10.0,
        output: OutputFn | None = None,
        regularizers: RegularizerSpec = None,
        lr_schedule: str = "constant",
        lr_final_ratio: float = 0.1,
        lr_step_every: int = 1000,
        lr_step_factor: float = 0.5,
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best: bool = False,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        keep_checkpoints: int = 2,
        progress: bool = True,
        console: Console | None = None,
    ) -> None:
        check_trainer_arguments(
            model=model,
            optimizer=optimizer,
            criterion=criterion,
            grad_clip=grad_clip,
            output=output,
            lr_schedule=lr_schedule,
            lr_final_ratio=lr_final_ratio,
            lr_step_every=lr_step_every,
            lr_step_factor=lr_step_factor,
            patience=patience,
            min_delta=min_delta,
            checkpoint_every=checkpoint_every,
            keep_checkpoints=keep_checkpoints,
        )
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.criterion = criterion
        self.grad_clip = grad_clip
        self.lr_schedule, self.lr_final_ratio = lr_schedule, lr_final_ratio
        self.lr_step_every, self.lr_step_factor = lr_step_every, lr_step_factor
        self.patience, self.min_delta = patience, min_delta
        self.restore_best = bool(restore_best)
        self._best_weights: dict[str, Tensor] | None = None
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.checkpoint_every, self.keep_checkpoints = checkpoint_every, keep_checkpoints
        self.show_progress = progress
        self.console = console or Console(stderr=True, quiet=not progress)
        self.task = CriterionTask(criterion)
        self.regularizers: dict[str, Regularizer] = resolve_regularizers(regularizers)
        for regularizer in self.regularizers.values():
            regularizer.bind(self.task)
        self.wrapped = LoaderModel(model, output or model_output)
        """The model as the loop and the regularizers call it (:class:`LoaderModel`)."""
        self.base_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        self.step = 0
        self.history = History()
        self._wrote_checkpoints = False
        self._call_start = 0

    def train(
        self,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None = None,
        epochs: int = 1,
        resume: bool | str | Path = False,
    ) -> History:
        """Train for ``epochs`` epochs over ``train_loader``; return the loss history.

        Args:
            train_loader: yields ``(inputs, targets)`` batches (a ``DataLoader``).
            val_loader: the same, held out: its mean loss after every epoch (needed
                for early stopping).
            epochs: epochs in all (a resumed training counts those already done).
            resume: ``True``: go on from the latest checkpoint in ``checkpoint_dir``;
                a path: from that checkpoint file; ``False``: start afresh.

        Returns:
            The :class:`History`: per epoch, the mean training and validation losses.
        """
        self._check_train(train_loader, val_loader, epochs, resume)
        stopper = EarlyStopping(self.patience, self.min_delta) if self.patience else None
        self._best_weights = None  # a resumed training gets its own back from the checkpoint
        point = self._resume_point(resume, stopper) if resume is not False else None
        history = self.history = point.history if point else History()
        first_epoch = point.epoch if point else 0
        steps_per_epoch = _length(train_loader)
        total = steps_per_epoch * epochs if steps_per_epoch is not None else None
        done = point.call_steps if point else 0
        self._call_start = self.step - done
        display = progress_display(
            self.console, total, done, "val_loss", None if self.show_progress else False
        )
        self.model.train()
        if not history.stopped_early:
            with showing(display, self.show_progress):
                for epoch in range(first_epoch, epochs):
                    resumed = point if point is not None and epoch == first_epoch else None
                    stop = self._epoch(
                        epoch, epochs, train_loader, val_loader, total, resumed, stopper, display
                    )
                    if stop:
                        break
        if self.restore_best and self._best_weights is not None:
            self.model.load_state_dict(self._best_weights)
            if self.show_progress:
                best_epoch = history.best_epoch if history.best_epoch is not None else 0
                self.console.print(
                    f"Restored the weights of epoch {best_epoch + 1} "
                    f"(validation loss {min(history.val):.4f})."
                )
        return history

    def evaluate(
        self, loader: Iterable[Any], metrics: Mapping[str, Metric] | None = None
    ) -> dict[str, float]:
        """The mean loss over ``loader`` (``"loss"``) and each of ``metrics``, without
        gradients, in evaluation mode; weighted by batch size (or exact for
        :class:`nma.Ratio` metrics)."""

        def score(outputs: Tensor, batch: Batch) -> dict[str, MetricValue]:
            values: dict[str, MetricValue] = {"loss": self.task.loss(outputs, batch).item()}
            for name, metric in (metrics or {}).items():
                values[name] = metric(outputs[0], batch.targets[0])
            return values

        result = evaluate_batches(self.wrapped, loader_batches(loader), score, self.device)
        if "loss" not in result:
            raise UsageError("The evaluation DataLoader yielded no batch.")
        return result

    def end_experience(self, train_loader: Iterable[Any]) -> None:
        """Call the regularizers' ``end_experience`` hooks (EWC's Fisher, GEM's
        memories, ...) with the finished experience's data: passes over
        ``train_loader``, without end, one stream per regularizer."""
        self.model.train()
        end_experience(self.regularizers, self.wrapped, lambda _: endless_batches(train_loader))

    def train_step(self, batch: Batch) -> Tensor:
        """One optimiser step on a :func:`~nma.training.adapters.loader_batch` batch
        (already augmented); the loss without penalties."""

        def forward() -> tuple[Tensor, Tensor]:
            outputs = self.wrapped(batch.inputs)[0]
            return self.task.loss(outputs, batch), outputs

        regularizers = list(self.regularizers.values())
        loss, _ = optimizer_step(
            forward, self.wrapped, self.optimizer, regularizers, self.grad_clip
        )
        return loss

    def _epoch(
        self,
        epoch: int,
        epochs: int,
        loader: Iterable[Any],
        val_loader: Iterable[Any] | None,
        total: int | None,
        resumed: _ResumePoint | None,
        stopper: EarlyStopping | None,
        display: Display,
    ) -> bool:
        """Train one epoch, validate, checkpoint; whether early stopping ends training."""
        if resumed is not None:
            start = resumed.start
            restore_epoch_start(start, loader, self.device)
        else:
            start = epoch_start_states(loader, self.device)
        batches: Iterator[Any] = iter(loader)
        skip = resumed.batch if resumed is not None else 0
        for _ in range(skip):
            next(batches)
        if resumed is not None:
            restore_generators(resumed.rng, val_loader, VAL_PREFIX)
            if skip:  # the generators as they were after the batches skipped
                set_rng_states(resumed.rng, self.device)
        loss_sum, count = (resumed.loss_sum, resumed.count) if resumed else (0.0, 0)
        done, call_start = skip, self._call_start
        for item in batches:
            batch = loader_batch(item)
            size = batch.inputs.shape[1]
            batch = augment_batch(batch.to(self.device), self.regularizers.values())
            self._set_lr(self.step - call_start, total)
            loss = self.train_step(batch).item()
            self.step += 1
            done += 1
            loss_sum, count = loss_sum + loss * size, count + size
            display.advance(self.step - call_start, loss=loss)
            if self.checkpoint_dir and checkpoint_due(self.step, self.checkpoint_every):
                mid = {"loss_sum": loss_sum, "count": count, "call_steps": self.step - call_start}
                self._save(epoch, done, start, val_loader, stopper, mid)
        if count == 0:
            raise UsageError("The training DataLoader yielded no batch.")
        self.history.train.append(loss_sum / count)
        stop = False
        line = f"epoch {epoch + 1}/{epochs}: train loss {loss_sum / count:.4f}"
        if val_loader is not None:
            val = self.evaluate(val_loader)["loss"]
            self.history.val.append(val)
            self.history.best_epoch = min(
                range(len(self.history.val)), key=self.history.val.__getitem__
            )
            line += f", val loss {val:.4f}"
            if self.restore_best and self.history.best_epoch == len(self.history.val) - 1:
                self._best_weights = {
                    k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()
                }
            display.advance(self.step - call_start, metric=val)
            if stopper is not None and stopper.update(epoch, val):
                stop = self.history.stopped_early = epoch + 1 < epochs
                if stop:
                    line += f" (no improvement for {stopper.patience} epochs: stopping)"
        if self.show_progress:
            display.print(line)
        if self.checkpoint_dir:
            call = {"call_steps": self.step - call_start}
            start = epoch_start_states(loader, self.device)
            self._save(epoch + 1, 0, start, val_loader, stopper, call)
        return stop

    def _set_lr(self, step: int, total: int | None) -> None:
        if self.lr_schedule == "constant" or (total is None and self.lr_schedule == "cosine"):
            return
        factor = lr_factor(
            self.lr_schedule,
            self.lr_final_ratio,
            step,
            total or 0,
            self.lr_step_every,
            self.lr_step_factor,
        )
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = base * factor

    def _save(
        self,
        epoch: int,
        batch: int,
        start: dict[str, Tensor],
        val_loader: Iterable[Any] | None,
        stopper: EarlyStopping | None,
        more: dict[str, Any],
    ) -> None:
        assert self.checkpoint_dir is not None
        extra = {
            "trainer": "MemoryTrainer",
            "nma_version": nma.__version__,
            "epoch": epoch,
            "batch": batch,
            "history": self.history.to_dict(),
            "early_stopping": stopper.to_dict() if stopper else None,
            **more,
        }
        rng = {**rng_states(self.device), **start, **generator_states(val_loader, VAL_PREFIX)}
        best = self._best_weights or {}
        checkpoint = training_checkpoint(
            self.step,
            self.model,
            self.optimizer,
            self.regularizers,
            rng,
            extra,
            {f"{BEST_PREFIX}{k}": v for k, v in best.items()},
        )
        write_checkpoint(checkpoint, self.checkpoint_dir, self.keep_checkpoints)
        self._wrote_checkpoints = True

    def _resume_point(
        self, resume: bool | str | Path, stopper: EarlyStopping | None
    ) -> _ResumePoint | None:
        """Restore the checkpoint ``resume`` names; ``None`` if there is none yet."""
        if resume is True:
            assert self.checkpoint_dir is not None
            found = list_checkpoints(self.checkpoint_dir)
            if not found:
                return None
            path = found[-1][1]
        else:
            path = Path(resume)  # type: ignore[arg-type]
        checkpoint = load_checkpoint(path)
        extra = checkpoint.extra
        if extra.get("trainer") != "MemoryTrainer":
            raise UsageError(
                f"The checkpoint {str(path)!r} was not written by a MemoryTrainer (an nma run's "
                f"checkpoint resumes with `nma run --resume`)."
            )
        restore_training_state(
            checkpoint,
            self.model,
            self.optimizer,
            self.regularizers,
            what="trainer's model and optimiser",
            advice="Build the model and the optimiser as for the training that wrote it.",
        )
        self.step = checkpoint.step
        best = {
            k.removeprefix(BEST_PREFIX): v
            for k, v in checkpoint.tensors.items()
            if k.startswith(BEST_PREFIX)
        }
        self._best_weights = best or None
        if stopper is not None and extra.get("early_stopping"):
            stopper.load(extra["early_stopping"])
        self._wrote_checkpoints = True
        return _ResumePoint(
            epoch=int(extra["epoch"]),
            batch=int(extra["batch"]),
            history=History.from_dict(extra["history"]),
            start={k: v for k, v in checkpoint.rng.items() if k.startswith("epoch-start/")},
            rng=checkpoint.rng,
            loss_sum=float(extra.get("loss_sum", 0.0)),
            count=int(extra.get("count", 0)),
            call_steps=int(extra.get("call_steps", 0)),
        )

    def _check_train(
        self,
        train_loader: Iterable[Any],
        val_loader: Iterable[Any] | None,
        epochs: int,
        resume: bool | str | Path,
    ) -> None:
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise UsageError(f"epochs must be a whole number of at least 1, not {epochs!r}.")
        for name, loader in (("train_loader", train_loader), ("val_loader", val_loader)):
            if loader is not None and (isinstance(loader, Tensor) or not _iterable(loader)):
                raise UsageError(
                    f"{name} must be a DataLoader (or another iterable of (inputs, targets) "
                    f"batches), not {type(loader).__name__}."
                )
        if self.patience and val_loader is None:
            raise UsageError(
                "Early stopping (patience=...) watches the validation loss: pass a val_loader."
            )
        if self.restore_best and val_loader is None:
            raise UsageError(
                "restore_best=True restores the epoch of the lowest validation loss: pass a "
                "val_loader."
            )
        if resume is not False and resume is not True and not isinstance(resume, str | Path):
            raise UsageError(f"resume must be True, False or a checkpoint's path, not {resume!r}.")
        if resume is True and self.checkpoint_dir is None:
            raise UsageError("resume=True resumes from checkpoint_dir, but the trainer has none.")
        if (
            resume is False
            and self.checkpoint_dir is not None
            and not self._wrote_checkpoints
            and list_checkpoints(self.checkpoint_dir)
        ):
            raise UsageError(
                f"The checkpoint folder {str(self.checkpoint_dir)!r} already holds checkpoints. "
                f"Go on from them with train(..., resume=True), or choose another checkpoint_dir."
            )


class _ResumePoint:
    """Where a checkpoint left a training: the epoch, the batches of it done, the
    history, the generators (at the epoch's start and at the checkpoint)."""

    def __init__(
        self,
        epoch: int,
        batch: int,
        history: History,
        start: dict[str, Tensor],
        rng: dict[str, Tensor],
        loss_sum: float,
        count: int,
        call_steps: int,
    ) -> None:
        self.epoch, self.batch, self.history = epoch, batch, history
        self.start, self.rng = start, rng
        self.loss_sum, self.count, self.call_steps = loss_sum, count, call_steps


def _length(loader: Iterable[Any]) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _iterable(value: object) -> bool:
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
