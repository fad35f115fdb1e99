"""The parts of the training loop shared by every trainer.

The CLI's trainer (:mod:`nma.trainer`, steps over a task's batches) and the Python
API's trainers (:mod:`nma.training`, epochs over ``DataLoader``s) call these same
functions for everything they have in common: the optimiser step (the regularizers'
penalties, backward, gradient clipping, their gradient edits, the update), the
regularizers' other hooks (``augment``, ``end_experience``), the learning-rate
schedule, evaluation, the checkpoint cadence and the state a checkpoint holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor, nn

from nma.checkpoint import Checkpoint, checkpoint_path, list_checkpoints, save_checkpoint
from nma.errors import UsageError
from nma.regularizer import Regularizer
from nma.task import Batch, MetricValue, combine_metrics

Forward = Callable[[], tuple[Tensor, Tensor]]
"""A closure computing ``(loss, outputs)`` of one batch: the part of a step that
differs between trainers (a task's loss, or a user's criterion)."""


def optimizer_step(
    forward: Forward,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    regularizers: Sequence[Regularizer] = (),
    grad_clip: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """One optimiser step: ``loss, outputs = forward()``, plus each regularizer's
    ``penalty(model)``; backward; the global gradient norm clipped to ``grad_clip``
    (``0``: not clipped); each regularizer's ``after_backward(model)``; the update.

    Returns the loss without the penalties, and the outputs. Nothing here
    synchronises with the host, so the step may be captured in a CUDA graph.
    """
    loss, outputs = forward()
    total = loss
    for regularizer in regularizers:
        penalty = regularizer.penalty(model)
        if penalty is not None:
            total = total + penalty
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    for regularizer in regularizers:
        regularizer.after_backward(model)
    optimizer.step()
    return loss, outputs


def augment_batch(batch: Batch, regularizers: Iterable[Regularizer]) -> Batch:
    """``batch`` after every regularizer's ``augment`` (e.g. replayed sequences added)."""
    for regularizer in regularizers:
        batch = regularizer.augment(batch)
    return batch


def end_experience(
    regularizers: Mapping[str, Regularizer],
    model: nn.Module,
    batches_for: Callable[[str], Iterable[Batch]],
) -> None:
    """Call every regularizer's ``end_experience`` with the finished experience's
    training data, ``batches_for(name)`` (an endless stream of its own per regularizer)."""
    for name, regularizer in regularizers.items():
        regularizer.end_experience(model, batches_for(name))


def lr_factor(
    schedule: str,
    final_ratio: float,
    step: int,
    steps: int,
    step_every: int = 1,
    step_factor: float = 1.0,
) -> float:
    """The share of the peak learning rate at optimiser step ``step`` (from 0) of ``steps``.

    ``constant``: 1. ``cosine``: ``r + (1 - r)(1 + cos(pi s / S)) / 2`` with ``r =
    final_ratio``, ``s = step`` and ``S = steps - 1`` (a half cosine from 1 down to
    ``r``; Loshchilov & Hutter 2017, SGDR, eq. 5 without restarts). ``step``:
    ``step_factor ** floor(s / step_every)``, a decay every ``step_every`` steps (as
    End-To-End Memory Networks halve their rate every 25 epochs, Sukhbaatar et al. 2015,
    section 4.2). A function of the step alone, so a resumed run follows the same
    schedule with no scheduler state.
    """
    if schedule == "step":
        return step_factor ** (step // step_every)
    if schedule == "constant" or steps <= 1:
        return 1.0
    progress = min(step / (steps - 1), 1.0)
    return final_ratio + (1 - final_ratio) * (1 + math.cos(math.pi * progress)) / 2


def autocast(device: torch.device, precision: str, cache: bool = True) -> torch.autocast:
    """Mixed precision for ``precision == "bf16"``, a no-op context otherwise.

    ``cache`` keeps each weight's bfloat16 copy for the whole forward pass (a recurrent
    model uses its weights at every step); CUDA graph capture needs it off.
    """
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=cache
    )


def evaluate_batches(
    model: nn.Module,
    batches: Iterable[Batch],
    score: Callable[[Tensor, Batch], dict[str, MetricValue]],
    device: torch.device,
    precision: str = "fp32",
) -> dict[str, float]:
    """Metrics of ``model`` over ``batches`` without gradients, in evaluation mode.

    ``score(outputs, batch)`` gives one batch's metrics from the model's float
    outputs; batches are combined by :func:`nma.task.combine_metrics`, weighted by
    their sequences. The model is left in training mode.
    """
    model.eval()
    parts: list[tuple[dict[str, MetricValue], int]] = []
    with torch.no_grad():
        for batch in batches:
            batch = batch.to(device)
            with autocast(device, precision):
                outputs, _ = model(batch.inputs)
            parts.append((score(outputs.float(), batch), batch.inputs.shape[1]))
    model.train()
    return combine_metrics(parts)


def checkpoint_due(step: int, every: int, ended: bool = False, stop: bool = False) -> bool:
    """Whether to write a checkpoint after ``step``: every ``every`` steps (``0``:
    never on a count), at the end of an experience or epoch, and on a stop request."""
    return bool(every and step % every == 0) or ended or stop


def rng_states(device: torch.device) -> dict[str, Tensor]:
    """The global generators' states: ``torch`` (CPU), and ``cuda`` on a CUDA device."""
    states = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_rng_states(states: Mapping[str, Tensor], device: torch.device, prefix: str = "") -> None:
    """Restore what :func:`rng_states` returned (stored under ``prefix``)."""
    if f"{prefix}torch" in states:
        torch.set_rng_state(states[f"{prefix}torch"])
    if f"{prefix}cuda" in states and device.type == "cuda":
        torch.cuda.set_rng_state(states[f"{prefix}cuda"], device)


def write_checkpoint(checkpoint: Checkpoint, folder: Path, keep: int) -> Path:
    """Write ``checkpoint`` as ``folder/step-N.safetensors`` (atomically, see
    :mod:`nma.checkpoint`) and delete all but the ``keep`` most recent ones."""
    path = checkpoint_path(folder, checkpoint.step)
    save_checkpoint(checkpoint, path)
    for _, old in list_checkpoints(folder)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def training_checkpoint(
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    regularizers: Mapping[str, Regularizer],
    rng: dict[str, Tensor],
    extra: dict[str, object],
    tensors: dict[str, Tensor] | None = None,
) -> Checkpoint:
    """The checkpoint of a training loop: model, optimiser, regularizers, generators
    (and any other named ``tensors`` the loop wants back)."""
    return Checkpoint(
        step=step,
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        regularizers={name: r.state_dict() for name, r in regularizers.items()},
        rng=rng,
        extra=extra,
        tensors=tensors or {},
    )


def restore_training_state(
    checkpoint: Checkpoint,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    regularizers: Mapping[str, Regularizer],
    what: str = "model",
    advice: str = "",
) -> None:
    """Load a checkpoint's model, optimiser and regularizer state (not the generators).

    Raises:
        UsageError: the checkpoint does not fit the model or the optimiser: "The
            checkpoint does not fit this ``what`` (why). ``advice``".
    """
    try:
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
    except (RuntimeError, ValueError, KeyError) as exc:
        message = f"The checkpoint does not fit this {what} ({exc})."
        raise UsageError(f"{message} {advice}" if advice else message) from None
    for name, regularizer in regularizers.items():
        regularizer.load_state_dict(checkpoint.regularizers.get(name, {}))
