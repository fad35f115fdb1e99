"""How a ``DataLoader``'s ``(inputs, targets)`` and a user's model and criterion meet
the shared training loop (:mod:`nma.loop`) and the regularizer plugins, which speak in
:class:`nma.Batch`es, tasks and ``model(inputs)[0]``.

A loader's batch becomes a :class:`~nma.Batch` with a time axis of length 1 in front:
``inputs`` ``(1, B, ...)``, ``targets`` ``(1, B, ...)``, ``mask`` ``(1, B)`` of ones, so
the regularizers' helpers (select sequences along dimension 1, concatenate batches,
take one sequence at a time) work on any data unchanged. :class:`LoaderModel` takes
that front axis off before calling the user's model, and puts it back on its output.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from nma.errors import UsageError
from nma.task import Batch, MetricValue, Task

Criterion = Callable[[Tensor, Tensor], Tensor]
"""``loss = criterion(outputs, targets)``: a scalar, a mean over the batch (as
``nn.CrossEntropyLoss()`` and ``nn.MSELoss()`` give by default)."""

OutputFn = Callable[[Any], Tensor]
"""What the criterion scores, from what the model returns."""


def model_output(returned: Any) -> Tensor:
    """The model's outputs: the first element of a tuple (``outputs, state`` as the
    models of :mod:`nma.models` and ``nn.LSTM`` return), else what it returned."""
    if isinstance(returned, tuple | list):
        returned = returned[0]
    if not isinstance(returned, Tensor):
        raise UsageError(
            f"The model returned {type(returned).__name__}, not a tensor (or a tuple whose "
            f"first element is one). Pass output=... to say what the criterion scores."
        )
    return returned


def last_step(returned: Any) -> Tensor:
    """The outputs of the last time step of a batch-first sequence model: ``(B, T, F)``
    → ``(B, F)``, for a sequence classifier that answers after reading its input."""
    outputs = model_output(returned)
    if outputs.dim() < 3:
        raise UsageError(
            f"last_step expects batch-first sequence outputs (B, T, F), got shape "
            f"{tuple(outputs.shape)}."
        )
    return outputs[:, -1]


def loader_batch(item: Any) -> Batch:
    """A ``DataLoader``'s ``(inputs, targets)`` as a :class:`~nma.Batch` with a time
    axis of length 1 in front (see the module's documentation)."""
    if not (isinstance(item, tuple | list) and len(item) == 2):
        raise UsageError(
            f"The trainers read DataLoaders that yield (inputs, targets) pairs, as one over a "
            f"TensorDataset(inputs, targets) does; this one yielded {_describe(item)}."
        )
    inputs, targets = item
    if not (isinstance(inputs, Tensor) and isinstance(targets, Tensor)):
        raise UsageError(
            f"The trainers read (inputs, targets) pairs of tensors; this DataLoader yielded "
            f"({type(inputs).__name__}, {type(targets).__name__})."
        )
    if inputs.dim() == 0 or targets.dim() == 0 or len(inputs) != len(targets):
        raise UsageError(
            f"inputs and targets must have the batch first, of the same size; got shapes "
            f"{tuple(inputs.shape)} and {tuple(targets.shape)}."
        )
    mask = torch.ones(1, inputs.shape[0], device=inputs.device)
    return Batch(inputs.unsqueeze(0), targets.unsqueeze(0), mask)


def loader_batches(loader: Iterable[Any]) -> Iterator[Batch]:
    """One pass over ``loader`` as :func:`loader_batch` batches."""
    for item in loader:
        yield loader_batch(item)


def endless_batches(loader: Iterable[Any]) -> Iterator[Batch]:
    """Passes over ``loader`` one after another, without end (for ``end_experience``)."""
    while True:
        empty = True
        for batch in loader_batches(loader):
            empty = False
            yield batch
        if empty:
            raise UsageError("The training DataLoader yielded no batch.")


class LoaderModel(nn.Module):
    """A user's model as the loop and the regularizers call it: ``outputs, None =
    wrapper(inputs)`` on :func:`loader_batch` tensors (``(1, B, ...)`` in and out).

    Args:
        model: the user's model, called on ``(B, ...)`` as the loader yields it.
        output: what the criterion scores, from what the model returns.
    """

    def __init__(self, model: nn.Module, output: OutputFn = model_output) -> None:
        super().__init__()
        self.model = model
        self.output = output

    def forward(self, inputs: Tensor) -> tuple[Tensor, None]:
        """``(1, B, ...)`` → ``(1, B, ...)``: the model's outputs with the front axis."""
        return self.output(self.model(inputs[0])).unsqueeze(0), None


class CriterionTask(Task):
    """A user's criterion as the :class:`~nma.Task` the regularizers score with
    (EWC's Fisher, GEM's memories): ``loss = criterion(outputs, targets)`` on
    :func:`loader_batch` batches. It makes no batches of its own.

    Args:
        criterion: ``loss = criterion(outputs, targets)``.
    """

    def __init__(self, criterion: Criterion) -> None:
        self.criterion = criterion

    def loss(self, outputs: Tensor, batch: Batch) -> Tensor:
        """The criterion on the batch without its front axis."""
        return self.criterion(outputs[0], batch.targets[0])

    def metrics(self, outputs: Tensor, batch: Batch) -> dict[str, MetricValue]:
        """No metrics: the trainers score with their own functions."""
        return {}


def _describe(item: Any) -> str:
    if isinstance(item, tuple | list):
        return f"a {type(item).__name__} of {len(item)}"
    if isinstance(item, dict):
        return f"a dict with keys {sorted(item)}"
    return f"a {type(item).__name__}"
