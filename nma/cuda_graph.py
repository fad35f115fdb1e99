"""Whole training steps replayed from CUDA graphs (``train.cuda_graph``).

A memory model's step on a GPU is launch-bound: thousands of small kernels, each
launched from Python. Captured once in a CUDA graph, the whole step (forward over
the sequence, loss, backward, gradient clipping and the optimiser's update) is
replayed with one launch. A graph holds fixed shapes and fixed addresses, so there
is one graph per batch shape (a task with sequences of several lengths has several),
each reading its batch from its own static input tensors.

For each new shape the first batch runs eagerly on a side stream (warm-up: lazy
initialisation of libraries and of the optimiser's state must not happen during a
capture); the second is captured and then replayed; from then on every batch of that
shape is copied into the static inputs and replayed. Every batch is still exactly one
optimiser step, so a run with graphs follows the same trajectory as one without (up
to the order of floating-point reductions).

Requirements: a CUDA device; an optimiser created with ``capturable=True`` (the
trainer does this); no host synchronisation inside the step (no ``.item()``, no
data-dependent shapes) in the memory, controller, task loss or regularizers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import Tensor

from nma.task import Batch

StepResult = tuple[Tensor, Tensor]
"""What a training step returns: ``(loss, outputs)``."""


class Graph(Protocol):
    """A captured graph: :meth:`replay` runs the recorded work again."""

    def replay(self) -> None: ...


class GraphBackend(Protocol):
    """How graphs are made: CUDA's in training, a stand-in in the CPU tests."""

    def warmup(self, fn: Callable[[], StepResult]) -> StepResult: ...

    def capture(self, fn: Callable[[], StepResult]) -> tuple[Graph, StepResult]: ...


class CudaGraphBackend:
    """Warm-up on a side stream and capture with :class:`torch.cuda.CUDAGraph`."""

    def warmup(self, fn: Callable[[], StepResult]) -> StepResult:
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            result = fn()
        torch.cuda.current_stream().wait_stream(stream)
        return result

    def capture(self, fn: Callable[[], StepResult]) -> tuple[Graph, StepResult]:
        graph = torch.cuda.CUDAGraph()
        try:
            with torch.cuda.graph(graph):
                result = fn()
        except RuntimeError as exc:
            raise RuntimeError(
                "capturing the training step in a CUDA graph failed: a component "
                "synchronises with the host or changes shapes inside the step "
                f"({str(exc).splitlines()[0]}). Run without train.cuda_graph."
            ) from exc
        return graph, result


class GraphedStep:
    """A training step replayed from one CUDA graph per batch shape (module docstring).

    Args:
        step: runs one whole training step on a batch and returns ``(loss, outputs)``;
            it must read the batch only through the tensors it is given.
        backend: how graphs are warmed up and captured; CUDA's by default.
    """

    def __init__(
        self, step: Callable[[Batch], StepResult], backend: GraphBackend | None = None
    ) -> None:
        self.step = step
        self.backend: GraphBackend = backend or CudaGraphBackend()
        self._warm: set[Any] = set()
        self._graphs: dict[Any, tuple[Graph, Batch, StepResult]] = {}

    @staticmethod
    def _key(batch: Batch) -> Any:
        tensors = (batch.inputs, batch.targets, batch.mask)
        return tuple((t.shape, t.dtype, t.device) for t in tensors)

    @property
    def graphs(self) -> int:
        """How many graphs have been captured (one per batch shape seen twice)."""
        return len(self._graphs)

    def __call__(self, batch: Batch) -> StepResult:
        """Run one training step on ``batch``; returns ``(loss, outputs)``.

        The returned tensors of a replayed step are the graph's static outputs: they
        are overwritten by the next replay of the same shape.
        """
        key = self._key(batch)
        captured = self._graphs.get(key)
        if captured is None:
            if key not in self._warm:
                self._warm.add(key)
                return self.backend.warmup(lambda: self.step(batch))
            static = Batch(batch.inputs.clone(), batch.targets.clone(), batch.mask.clone())
            graph, result = self.backend.capture(lambda: self.step(static))
            self._graphs[key] = (graph, static, result)
            graph.replay()  # a capture records the work without doing it
            return result
        graph, static, result = captured
        static.inputs.copy_(batch.inputs)
        static.targets.copy_(batch.targets)
        static.mask.copy_(batch.mask)
        graph.replay()
        return result
