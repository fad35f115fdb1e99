"""Helpers shared by the continual-learning regularizers: the parameters they track,
single sequences drawn from an experience's batches, episodic memories, and the
gradient as one flat vector."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor, nn

from nma import Batch, Task, concat_batches, select


def tracked(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's trainable parameters by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def device_of(model: nn.Module) -> torch.device:
    """Where the model's parameters live."""
    return next(model.parameters()).device


def first_sequences(batches: Iterable[Batch], count: int) -> Batch:
    """The first ``count`` sequences of ``batches``, as one batch (time padded)."""
    taken: list[Batch] = []
    have = 0
    for batch in batches:
        taken.append(batch)
        have += batch.inputs.shape[1]
        if have >= count:
            break
    return select(concat_batches(taken), slice(0, count))


def single_sequences(batch: Batch) -> Iterator[Batch]:
    """Each sequence of ``batch`` as a batch of one."""
    for j in range(batch.inputs.shape[1]):
        yield select(batch, slice(j, j + 1))


def task_loss(model: nn.Module, task: Task | None, batch: Batch) -> Tensor:
    """The task's loss of ``model`` on ``batch`` (moved to the model's device)."""
    if task is None:
        raise RuntimeError("the regularizer was not bound to a task (Regularizer.bind)")
    batch = batch.to(device_of(model))
    outputs = model(batch.inputs)[0]
    return task.loss(outputs.float(), batch)


def loss_gradient(model: nn.Module, task: Task | None, batch: Batch) -> Tensor:
    """The gradient of the task loss on ``batch`` as one flat vector (``.grad`` untouched)."""
    params = list(tracked(model).values())
    grads = torch.autograd.grad(task_loss(model, task, batch), params, allow_unused=True)
    return flatten(
        [torch.zeros_like(p) if g is None else g for p, g in zip(params, grads, strict=True)]
    )


def flatten(tensors: Iterable[Tensor]) -> Tensor:
    """Tensors concatenated into one flat vector."""
    return torch.cat([t.reshape(-1) for t in tensors])


def current_gradient(model: nn.Module) -> Tensor:
    """The parameters' ``.grad`` as one flat vector (zeros where there is none)."""
    return flatten(
        torch.zeros_like(p) if p.grad is None else p.grad for p in tracked(model).values()
    )


def set_gradient(model: nn.Module, flat: Tensor) -> None:
    """Write a flat gradient vector back into the parameters' ``.grad``."""
    offset = 0
    for p in tracked(model).values():
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).to(p.dtype).clone()
        offset += n


def batch_state(prefix: str, batch: Batch) -> dict[str, Tensor]:
    """A batch as checkpoint tensors under ``prefix``."""
    return {f"{prefix}/{name}": t for name, t in zip(Batch._fields, batch, strict=True)}


def batch_from_state(prefix: str, state: dict[str, Tensor]) -> Batch | None:
    """The batch :func:`batch_state` saved under ``prefix``, if any."""
    keys = [f"{prefix}/{name}" for name in Batch._fields]
    if not all(k in state for k in keys):
        return None
    return Batch(*(state[k] for k in keys))
