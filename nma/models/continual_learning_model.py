"""``ContinualLearningModel``: a memory model with one output head per task."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from nma.errors import UsageError
from nma.layers.components import MemorySpec
from nma.model import ModelState
from nma.models.recurrent_model import RecurrentMemoryModel


class ContinualLearningModel(RecurrentMemoryModel):
    """A controller and a memory shared by every task, with one output head per task
    (the multi-head, task-incremental setting of continual learning, where the task
    is known at test time; Lopez-Paz & Ranzato 2017, §1; van de Ven & Tolias 2019).

    The heads are one linear map to ``num_tasks * output_size`` values, of which the
    selected task's ``output_size`` are returned. :class:`nma.training.ContinualLearningTrainer`
    selects the task (:meth:`select_task`) before training and evaluating on it; the
    continual-learning regularizers (``ewc``, ``si``, ``replay``, ...) then protect the
    shared parts. ``outputs, state = model(inputs, state=None, task=None)``: ``inputs``
    ``(T, B, input_size)`` (``(B, T, input_size)`` with ``batch_first``) → ``outputs``
    ``(T, B, output_size)``, the logits of ``task`` (the selected one if ``None``).

    Args:
        input_size: width of one step's input.
        hidden_size: the controller's width.
        memory_size: slots of the memory.
        memory_dim: width of one slot.
        num_tasks: the number of tasks, one head each.
        output_size: width of one step's output per task; ``input_size`` if ``None``.
        memory: a registered memory's name (``ntm`` by default) or a built ``nma.Memory``.
        controller: a registered controller (``lstm`` by default).
        read_heads: read heads, for memories that have the option.
        batch_first: inputs and outputs are ``(B, T, ...)``.
        memory_options: further options of the memory (docs/memories.md).

    Attributes:
        task: the selected task's index.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        memory_size: int = 128,
        memory_dim: int = 20,
        num_tasks: int = 1,
        output_size: int | None = None,
        *,
        memory: MemorySpec = "ntm",
        controller: str = "lstm",
        read_heads: int = 1,
        batch_first: bool = False,
        **memory_options: Any,
    ) -> None:
        if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 1:
            raise UsageError(f"num_tasks must be a whole number of at least 1, not {num_tasks!r}.")
        per_task = output_size if output_size is not None else input_size
        options = dict(memory_options)
        if isinstance(memory, str) and "read_heads" in _fields(memory):
            options.setdefault("read_heads", read_heads)
        super().__init__(
            input_size,
            hidden_size,
            memory_size,
            memory_dim,
            num_tasks * per_task,
            memory=memory,
            controller=controller,
            memory_options=options,
            batch_first=batch_first,
        )
        self.num_tasks = num_tasks
        self.output_size = per_task
        self.task = 0

    def select_task(self, task: int) -> None:
        """Answer with task ``task``'s head from now on (``0 <= task < num_tasks``)."""
        self.task = self._checked(task)

    def forward(  # type: ignore[override]
        self, inputs: Tensor, state: ModelState | None = None, task: int | None = None
    ) -> tuple[Tensor, ModelState]:
        """Run a sequence; the outputs of ``task``'s head (the selected one if ``None``)."""
        outputs, state = super().forward(inputs, state)
        return self._head_of(outputs, task), state

    def step(  # type: ignore[override]
        self, x: Tensor, state: ModelState, task: int | None = None
    ) -> tuple[Tensor, ModelState]:
        """One time step: ``x`` ``(B, input_size)`` → ``((B, output_size), state)``."""
        outputs, state = super().step(x, state)
        return self._head_of(outputs, task), state

    def _head_of(self, outputs: Tensor, task: int | None) -> Tensor:
        t = self.task if task is None else self._checked(task)
        return outputs[..., t * self.output_size : (t + 1) * self.output_size]

    def _checked(self, task: int) -> int:
        if isinstance(task, bool) or not isinstance(task, int) or not 0 <= task < self.num_tasks:
            raise UsageError(
                f"task must be a whole number from 0 to {self.num_tasks - 1} (num_tasks="
                f"{self.num_tasks}), not {task!r}."
            )
        return task


def _fields(memory: str) -> dict[str, Any]:
    from nma.registry import get_registry

    return get_registry().get("memory", memory).Config.model_fields
