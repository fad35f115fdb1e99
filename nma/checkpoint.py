"""Checkpoints: safetensors files written atomically, loaded without unpickling.

A checkpoint holds tensors only (model parameters and buffers, optimiser state,
regularizer state, random-number-generator states) plus JSON metadata in the
safetensors header (step, optimiser hyper-parameters, nma version). Loading never
executes code from the file, so a checkpoint from an untrusted source is safe to
open.

Writes go to a temporary file in the same folder, which is flushed to disk and
then renamed over the target: a crash mid-write leaves the previous checkpoint
intact.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as save_bytes

from nma.errors import UsageError

FORMAT = "nma-checkpoint-1"
_NAME = re.compile(r"^step-(\d+)\.safetensors$")


@dataclass
class Checkpoint:
    """The content of one checkpoint.

    Attributes:
        step: optimiser steps completed.
        model: the model's ``state_dict``.
        optimizer: the optimiser's ``state_dict`` (tensors and plain values).
        regularizers: per regularizer name, its ``state_dict``.
        rng: named random-generator states (``uint8`` tensors).
        extra: JSON-serialisable values the trainer wants back.
        tensors: other named tensors the trainer wants back (e.g. the best weights
            kept by ``MemoryTrainer(restore_best=True)``).
    """

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    regularizers: dict[str, dict[str, torch.Tensor]] = field(default_factory=dict)
    rng: dict[str, torch.Tensor] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    tensors: dict[str, torch.Tensor] = field(default_factory=dict)


def checkpoint_path(folder: Path, step: int) -> Path:
    """Where the checkpoint of ``step`` lives in ``folder``."""
    return folder / f"step-{step:08d}.safetensors"


def list_checkpoints(folder: Path) -> list[tuple[int, Path]]:
    """``(step, path)`` of every checkpoint in ``folder``, oldest first."""
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return sorted(found)


def save_checkpoint(checkpoint: Checkpoint, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically."""
    tensors: dict[str, torch.Tensor] = {}
    for name, tensor in checkpoint.model.items():
        tensors[f"model/{name}"] = tensor
    optim_state, optim_plain = _flatten_optimizer(checkpoint.optimizer)
    tensors.update(optim_state)
    for reg_name, state in checkpoint.regularizers.items():
        for name, tensor in state.items():
            tensors[f"regularizer/{reg_name}/{name}"] = tensor
    for name, tensor in checkpoint.rng.items():
        tensors[f"rng/{name}"] = tensor
    for name, tensor in checkpoint.tensors.items():
        tensors[f"tensors/{name}"] = tensor
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "format": FORMAT,
        "step": str(checkpoint.step),
        "optimizer": json.dumps(optim_plain),
        "extra": json.dumps(checkpoint.extra),
    }
    data = save_bytes(tensors, metadata=metadata)
    atomic_write_bytes(path, data)


def load_checkpoint(path: Path) -> Checkpoint:
    """Read a checkpoint; a :class:`UsageError` if it is missing, corrupt or foreign."""
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except FileNotFoundError:
        raise UsageError(f"The checkpoint {str(path)!r} does not exist.") from None
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UsageError(
            f"The checkpoint {str(path)!r} is corrupt or not a safetensors file ({exc}). "
            f"Remove it to resume from an earlier checkpoint of the run."
        ) from None
    if metadata.get("format") != FORMAT:
        raise UsageError(
            f"The file {str(path)!r} is a safetensors file but not an nma checkpoint "
            f"(format {metadata.get('format')!r}, expected {FORMAT!r})."
        )
    try:
        step = int(metadata["step"])
        optim_plain = json.loads(metadata["optimizer"])
        extra = json.loads(metadata.get("extra", "{}"))
    except (KeyError, ValueError) as exc:
        raise UsageError(f"The checkpoint {str(path)!r} has corrupt metadata ({exc}).") from None
    model: dict[str, torch.Tensor] = {}
    regularizers: dict[str, dict[str, torch.Tensor]] = {}
    rng: dict[str, torch.Tensor] = {}
    named: dict[str, torch.Tensor] = {}
    optim_tensors: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        section, _, rest = key.partition("/")
        if section == "model":
            model[rest] = tensor
        elif section == "optimizer":
            optim_tensors[rest] = tensor
        elif section == "regularizer":
            reg_name, _, name = rest.partition("/")
            regularizers.setdefault(reg_name, {})[name] = tensor
        elif section == "rng":
            rng[rest] = tensor
        elif section == "tensors":
            named[rest] = tensor
    optimizer = _unflatten_optimizer(optim_plain, optim_tensors)
    return Checkpoint(step, model, optimizer, regularizers, rng, extra, named)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], Any]:
    tensors: dict[str, torch.Tensor] = {}
    plain_state: dict[str, dict[str, Any]] = {}
    for param_id, param_state in state_dict.get("state", {}).items():
        plain: dict[str, Any] = {}
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{param_id}/{key}"] = value
            else:
                plain[key] = value
        plain_state[str(param_id)] = plain
    groups = [
        {k: v.item() if isinstance(v, torch.Tensor) else v for k, v in group.items()}
        for group in state_dict.get("param_groups", [])
    ]  # a tensor learning rate (train.cuda_graph) is stored as its value
    return tensors, {"param_groups": groups, "state": plain_state}


def _unflatten_optimizer(plain: dict[str, Any], tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {
        int(pid): dict(values) for pid, values in plain.get("state", {}).items()
    }
    for key, tensor in tensors.items():
        pid, _, name = key.partition("/")
        state.setdefault(int(pid), {})[name] = tensor
    return {"state": state, "param_groups": plain.get("param_groups", [])}
