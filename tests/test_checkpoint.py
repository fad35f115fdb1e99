"""Checkpoints: round trip, atomic replacement, and refusal of corrupt or foreign files."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from nma import UsageError
from nma.checkpoint import (
    Checkpoint,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)


def sample_checkpoint(step: int = 3) -> Checkpoint:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    return Checkpoint(
        step=step,
        model=model.state_dict(),
        optimizer=optimizer.state_dict(),
        regularizers={"ewc": {"fisher": torch.ones(2)}},
        rng={"torch": torch.get_rng_state()},
        extra={"last_eval_step": 2},
    )


def test_round_trip(tmp_path: Path):
    original = sample_checkpoint()
    path = checkpoint_path(tmp_path, original.step)
    save_checkpoint(original, path)
    loaded = load_checkpoint(path)
    assert loaded.step == 3
    assert loaded.extra == {"last_eval_step": 2}
    for key, value in original.model.items():
        assert torch.equal(loaded.model[key], value)
    assert torch.equal(loaded.rng["torch"], original.rng["torch"])
    assert torch.equal(loaded.regularizers["ewc"]["fisher"], torch.ones(2))
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.5)
    optimizer.load_state_dict(loaded.optimizer)
    assert optimizer.param_groups[0]["lr"] == 0.01
    state = optimizer.state_dict()["state"]
    for pid, values in original.optimizer["state"].items():
        for name, tensor in values.items():
            assert torch.equal(state[pid][name], tensor)


def test_crash_mid_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch):
    path = checkpoint_path(tmp_path, 1)
    save_checkpoint(sample_checkpoint(step=1), path)
    before = path.read_bytes()

    def crash(src: str, dst: str) -> None:
        raise OSError("disk pulled out")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(sample_checkpoint(step=1), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left behind


def test_truncated_file_is_a_usage_error(tmp_path: Path):
    path = checkpoint_path(tmp_path, 1)
    save_checkpoint(sample_checkpoint(), path)
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(UsageError, match="corrupt"):
        load_checkpoint(path)


def test_pickle_file_is_refused_without_running_it(tmp_path: Path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (Path.touch, (marker,))

    path = tmp_path / "step-00000001.safetensors"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(UsageError):
        load_checkpoint(path)
    assert not marker.exists()


def test_foreign_safetensors_file_is_refused(tmp_path: Path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(UsageError, match="not an nma checkpoint"):
        load_checkpoint(path)


def test_list_checkpoints_sorted_by_step(tmp_path: Path):
    for step in (10, 2, 100):
        save_checkpoint(sample_checkpoint(step), checkpoint_path(tmp_path, step))
    (tmp_path / "notes.txt").write_text("x")
    assert [s for s, _ in list_checkpoints(tmp_path)] == [2, 10, 100]
