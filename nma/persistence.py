"""Persistence of memory contents: save a memory's state, load it into a new model.

A memory state (a NamedTuple of tensors, possibly nested) is stored as a
safetensors file: one tensor per field, named by its path (``memory``,
``link``, ...), with the memory's class and the state's field layout in the
header. Loading checks the layout and the shapes against the target memory's
own ``initial_state`` and never executes code from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes
from torch import Tensor

from nma.checkpoint import atomic_write_bytes
from nma.errors import UsageError
from nma.memory import Memory
from nma.state import State

FORMAT = "nma-memory-1"


def flatten_state(state: State, prefix: str = "") -> dict[str, Tensor]:
    """``{"field/sub": tensor}`` for every tensor of a (nested) NamedTuple state."""
    if isinstance(state, Tensor):
        return {prefix or "state": state}
    if state is None:
        return {}
    out: dict[str, Tensor] = {}
    names = getattr(state, "_fields", None) or [str(i) for i in range(len(state))]
    for name, value in zip(names, state, strict=True):
        out.update(flatten_state(value, f"{prefix}/{name}" if prefix else name))
    return out


def save_memory(path: str | Path, memory: Memory, state: State, index: int | None = None) -> None:
    """Write ``state`` (of ``memory``) to ``path`` atomically.

    Args:
        path: the file to write (``.safetensors``).
        memory: the memory the state belongs to.
        state: its state, batch first in every tensor.
        index: keep only this batch element (saved with batch size 1).
    """
    tensors = flatten_state(state)
    if index is not None:
        tensors = {k: v[index : index + 1] for k, v in tensors.items()}
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "memory": f"{type(memory).__module__}.{type(memory).__qualname__}",
        "config": json.dumps(memory.config.model_dump(mode="json")),
    }
    atomic_write_bytes(Path(path), save_bytes(tensors, metadata=metadata))


def load_memory(
    path: str | Path,
    memory: Memory,
    batch_size: int = 1,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> State:
    """Read a saved state into the layout of ``memory``'s state.

    A file saved with batch size 1 is repeated over ``batch_size``; otherwise its
    batch size must equal ``batch_size``. Floating-point tensors are cast to
    ``dtype``.

    Raises:
        UsageError: if the file is missing, corrupt, not a memory file, or its
            fields or shapes do not fit ``memory``.
    """
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            stored = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise UsageError(f"The memory file {str(path)!r} does not exist.") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UsageError(f"The memory file {str(path)!r} is corrupt ({exc}).") from None
    if metadata.get("format") != FORMAT:
        raise UsageError(f"{str(path)!r} is not an nma memory file.")
    template = memory.initial_state(batch_size, torch.device(device), dtype)
    expected = flatten_state(template)
    if set(stored) != set(expected):
        raise UsageError(
            f"The memory file {str(path)!r} holds the fields {sorted(stored)}, but "
            f"{type(memory).__name__} has {sorted(expected)} (it was saved from "
            f"{metadata.get('memory')})."
        )
    loaded: dict[str, Tensor] = {}
    for key, target in expected.items():
        value = stored[key]
        if value.shape[1:] != target.shape[1:]:
            raise UsageError(
                f"The memory file {str(path)!r} does not fit this memory: field {key!r} has "
                f"shape {tuple(value.shape[1:])} per sequence, the memory needs "
                f"{tuple(target.shape[1:])} (saved with options {metadata.get('config')})."
            )
        if value.shape[0] == 1 and batch_size != 1:
            value = value.expand(batch_size, *value.shape[1:]).clone()
        elif value.shape[0] != batch_size:
            raise UsageError(
                f"The memory file {str(path)!r} holds {value.shape[0]} sequences; "
                f"expected 1 or {batch_size}."
            )
        value = value.to(device)
        loaded[key] = value.to(dtype) if value.is_floating_point() else value
    return _rebuild(template, loaded, "")


def _rebuild(template: Any, values: dict[str, Tensor], prefix: str) -> Any:
    if isinstance(template, Tensor):
        return values[prefix or "state"]
    if template is None:
        return None
    names = getattr(template, "_fields", None) or [str(i) for i in range(len(template))]
    items = [
        _rebuild(value, values, f"{prefix}/{name}" if prefix else name)
        for name, value in zip(names, template, strict=True)
    ]
    return type(template)(*items) if hasattr(template, "_fields") else tuple(items)
