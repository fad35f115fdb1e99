"""The trainers' checks of their arguments: a one-paragraph :class:`nma.UsageError`
for each mistake, before any training."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from nma.errors import UsageError

SCHEDULES = ("constant", "cosine", "step")


def check_trainer_arguments(
    model: Any,
    optimizer: Any,
    criterion: Any,
    grad_clip: Any,
    output: Any,
    lr_schedule: Any,
    lr_final_ratio: Any,
    lr_step_every: Any,
    lr_step_factor: Any,
    patience: Any,
    min_delta: Any,
    checkpoint_every: Any,
    keep_checkpoints: Any,
) -> None:
    """Raise a :class:`UsageError` naming the first bad argument of a trainer."""
    if not isinstance(model, nn.Module):
        raise UsageError(f"model must be a torch nn.Module, not {type(model).__name__}.")
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise UsageError(
            f"optimizer must be a torch.optim.Optimizer (e.g. torch.optim.Adam("
            f"model.parameters())), not {type(optimizer).__name__}."
        )
    if not callable(criterion):
        raise UsageError(
            f"criterion must be callable as criterion(outputs, targets) (e.g. "
            f"nn.CrossEntropyLoss()), not {type(criterion).__name__}."
        )
    if output is not None and not callable(output):
        raise UsageError(f"output must be a function of what the model returns, not {output!r}.")
    _check_owned(model, optimizer)
    _number("grad_clip", grad_clip, low=0.0)
    if lr_schedule not in SCHEDULES:
        raise UsageError(f"lr_schedule must be one of {', '.join(SCHEDULES)}, not {lr_schedule!r}.")
    _number("lr_final_ratio", lr_final_ratio, low=0.0, high=1.0)
    _whole("lr_step_every", lr_step_every, low=1)
    _number("lr_step_factor", lr_step_factor, low=0.0, high=1.0)
    if patience is not None:
        _whole("patience", patience, low=1, hint=" (or None: no early stopping)")
    _number("min_delta", min_delta, low=0.0)
    _whole("checkpoint_every", checkpoint_every, low=0)
    _whole("keep_checkpoints", keep_checkpoints, low=1)


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` → CUDA when available, else the CPU; a clear error for a missing or
    unknown device."""
    if isinstance(device, torch.device):
        name = str(device)
    elif isinstance(device, str):
        name = device
    else:
        raise UsageError(
            f"device must be 'auto', 'cpu', 'cuda', 'cuda:N' or a torch.device, not {device!r}."
        )
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        resolved = torch.device(name)
    except RuntimeError:
        raise UsageError(
            f"Unknown device {name!r}: use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError(
                f"device {name!r} was asked for, but this PyTorch build sees no CUDA device "
                f"(torch {torch.__version__}). Use 'cpu' or 'auto'."
            )
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise UsageError(
                f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) exist."
            )
    return resolved


def _check_owned(model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    owned = {id(p) for p in model.parameters()}
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if not params or any(id(p) not in owned for p in params):
        raise UsageError(
            "The optimizer's parameters are not (all) the model's: build it over "
            "model.parameters() of the model given to the trainer."
        )


def _number(name: str, value: Any, low: float, high: float | None = None) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise UsageError(f"{name} must be a number {bound}, not {value!r}.")


def _whole(name: str, value: Any, low: int, hint: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise UsageError(f"{name} must be a whole number of at least {low}{hint}, not {value!r}.")
