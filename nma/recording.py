"""Recording what a memory does, step by step, for plots and analysis.

A :class:`Recorder` steps a :class:`nma.model.MemoryModel` (or a bare
:class:`nma.Memory`) over a batch, calls the memory's :meth:`nma.Memory.inspect`
after every step and keeps what it returns, for the first few sequences of the
batch. Nothing here runs during training: a run records only when asked to
(``nma plot``, ``nma run --plot``), after training, under ``torch.no_grad``, on a
held-out batch. Training is untouched whether recording is used or not.

What ``inspect`` returns falls into two kinds:

* **series**, kept at every step: weightings, usage, gates, routing, losses, ...
  A series ``name`` is stored as ``(T, S, ...)``: step, recorded sequence, then the
  shape ``inspect`` gave it without its batch axis.
* **contents**, kept at a few evenly spaced steps (snapshots): the stored data,
  which may be large. A name is contents when it is one of :data:`CONTENT_NAMES`
  or ends with ``_memory`` (``level0_memory`` ...). Stored as ``(C, S, ...)``, with
  ``content_steps`` ``(C,)`` the steps they were taken after.

Steps are counted from 1: step ``t`` is the state after the ``t``-th input.
A recording is saved as a safetensors file (tensors and a JSON header; loading
runs no code from the file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes
from torch import Tensor, nn

from nma.checkpoint import atomic_write_bytes
from nma.errors import UsageError
from nma.memory import Memory
from nma.state import State

FORMAT = "nma-recording-1"
CONTENT_NAMES: tuple[str, ...] = ("memory", "keys", "values", "link", "buffer")
"""Names of ``inspect`` outputs kept as snapshots rather than at every step."""


def is_content(name: str) -> bool:
    """Whether the ``inspect`` output ``name`` is stored contents (kept as snapshots)."""
    return name in CONTENT_NAMES or name.endswith("_memory")


@dataclass
class Recording:
    """What a memory did over ``steps`` steps of ``sequences`` sequences.

    Attributes:
        memory: a label for the memory (its registered name, or its class name).
        series: ``{name: (T, S, ...)}``, every step's ``inspect`` outputs.
        contents: ``{name: (C, S, ...)}``, the contents at ``content_steps``.
        content_steps: ``(C,)`` int64, the steps (from 1) of the snapshots, increasing.
    """

    memory: str
    series: dict[str, Tensor] = field(default_factory=dict)
    contents: dict[str, Tensor] = field(default_factory=dict)
    content_steps: Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))

    @property
    def steps(self) -> int:
        """``T``: the number of steps recorded."""
        for value in self.series.values():
            return int(value.shape[0])
        return int(self.content_steps.max()) if self.content_steps.numel() else 0

    @property
    def sequences(self) -> int:
        """``S``: the number of sequences recorded."""
        for value in (*self.series.values(), *self.contents.values()):
            return int(value.shape[1])
        return 0

    def save(self, path: str | Path) -> Path:
        """Write the recording to ``path`` (safetensors) atomically."""
        tensors = {f"series/{k}": v for k, v in self.series.items()}
        tensors.update({f"contents/{k}": v for k, v in self.contents.items()})
        tensors["content_steps"] = self.content_steps
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
        data = save_bytes(tensors, metadata={"format": FORMAT, "memory": self.memory})
        path = Path(path)
        atomic_write_bytes(path, data)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recording:
        """Read a recording that :meth:`save` wrote; a :class:`nma.UsageError` if the
        file is missing, corrupt or something else."""
        try:
            with safe_open(str(path), framework="pt", device="cpu") as handle:
                metadata = handle.metadata() or {}
                tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        except FileNotFoundError:
            raise UsageError(f"The recording {str(path)!r} does not exist.") from None
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise UsageError(f"The recording {str(path)!r} is corrupt ({exc}).") from None
        if metadata.get("format") != FORMAT:
            raise UsageError(f"{str(path)!r} is not an nma recording.")
        recording = cls(memory=metadata.get("memory", ""))
        for key, value in tensors.items():
            section, _, name = key.partition("/")
            if section == "series":
                recording.series[name] = value
            elif section == "contents":
                recording.contents[name] = value
            elif key == "content_steps":
                recording.content_steps = value
        return recording


def snapshot_steps(steps: int, snapshots: int) -> list[int]:
    """Up to ``snapshots`` evenly spaced steps of ``1..steps``, always the first and
    the last (when ``snapshots >= 2``)."""
    if steps <= 0 or snapshots <= 0:
        return []
    count = min(steps, snapshots)
    if count == 1:
        return [steps]
    return sorted({round(1 + i * (steps - 1) / (count - 1)) for i in range(count)})


class Recorder:
    """Steps a model or a memory over a batch and keeps what the memory exposes.

    Args:
        sequences: how many sequences of the batch to record (the first ones); the
            others are not run at all.
        snapshots: how many steps' contents to keep (evenly spaced, first and last
            included).
    """

    def __init__(self, sequences: int = 4, snapshots: int = 8) -> None:
        if sequences < 1 or snapshots < 1:
            raise ValueError("a recording needs at least one sequence and one snapshot")
        self.sequences = sequences
        self.snapshots = snapshots

    def record(
        self, model: nn.Module, inputs: Tensor, label: str = "", state: State = None
    ) -> Recording:
        """Run ``model`` (a :class:`nma.model.MemoryModel`: ``initial_state``, ``step``
        and a ``memory``) over ``inputs`` ``(T, B, input_size)`` and record its memory.

        The model is put in evaluation mode for the recording and back in its own mode
        after; no gradient is kept, no parameter changes and no random number is drawn.
        ``state`` (for the recorded sequences only) starts the run instead of the
        model's initial state.
        """
        inputs = inputs[:, : self.sequences]
        memory: Memory = model.memory  # type: ignore[assignment]
        if state is None:
            state = model.initial_state(inputs.shape[1], inputs.device, inputs.dtype)  # type: ignore[operator]

        def advance(x: Tensor, current: State) -> tuple[State, State]:
            _, new = model.step(x, current)  # type: ignore[operator]
            return new, new.memory

        return self._run(model, memory, inputs, state, advance, label)

    def record_memory(
        self, memory: Memory, interfaces: Tensor, label: str = "", state: State = None
    ) -> Recording:
        """Run a bare ``memory`` over interface vectors ``(T, B, interface_size)``."""
        interfaces = interfaces[:, : self.sequences]
        if state is None:
            state = memory.initial_state(interfaces.shape[1], interfaces.device, interfaces.dtype)

        def advance(x: Tensor, current: State) -> tuple[State, State]:
            _, new = memory(x, current)
            return new, new

        return self._run(memory, memory, interfaces, state, advance, label)

    def _run(
        self,
        module: nn.Module,
        memory: Memory,
        inputs: Tensor,
        state: State,
        advance: Callable[[Tensor, State], tuple[State, State]],
        label: str,
    ) -> Recording:
        steps = inputs.shape[0]
        keep = set(snapshot_steps(steps, self.snapshots))
        series: dict[str, list[Tensor]] = {}
        contents: dict[str, list[Tensor]] = {}
        taken: list[int] = []
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                for t, x in enumerate(inputs.unbind(0), start=1):
                    state, memory_state = advance(x, state)
                    seen = memory.inspect(memory_state)
                    if t in keep:
                        taken.append(t)
                    for name, value in seen.items():
                        if not is_content(name):
                            series.setdefault(name, []).append(_snapshot(value))
                        elif t in keep:
                            contents.setdefault(name, []).append(_snapshot(value))
        finally:
            module.train(was_training)
        return Recording(
            memory=label or type(memory).__name__,
            series={k: torch.stack(v) for k, v in series.items()},
            contents={k: torch.stack(v) for k, v in contents.items()},
            content_steps=torch.tensor(taken, dtype=torch.long),
        )


def _snapshot(value: Tensor) -> Tensor:
    """A CPU copy that later steps cannot change (some memories update in place);
    half-precision floats become float32."""
    value = value.detach().to("cpu", copy=True)
    if value.is_floating_point() and value.dtype != torch.float64:
        value = value.float()
    return value
