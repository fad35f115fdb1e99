"""Saving a memory's contents and loading them into a new model."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from nma import UsageError, load_memory, save_memory
from nma_plugins.addressing.ntm import NTMAddressing
from nma_plugins.memories.ntm import NTMMemory, NTMState
from tests.helpers import TINY, run_nma


def ntm(slots: int = 6, width: int = 4) -> NTMMemory:
    return NTMMemory(
        NTMMemory.Config(slots=slots, width=width),
        lambda w, h: NTMAddressing(NTMAddressing.Config(), w, h),
    )


def stepped_state(memory: NTMMemory, batch: int = 3) -> NTMState:
    torch.manual_seed(0)
    state = memory.initial_state(batch, torch.device("cpu"), torch.float32)
    for _ in range(4):
        _, state = memory(torch.randn(batch, memory.interface_size), state)
    return state


def test_round_trip_into_a_new_memory(tmp_path):
    memory = ntm()
    state = stepped_state(memory)
    path = tmp_path / "mem.safetensors"
    save_memory(path, memory, state)
    loaded = load_memory(path, ntm(), batch_size=3)
    assert isinstance(loaded, NTMState)
    for a, b in zip(state, loaded, strict=True):
        assert torch.equal(a, b)


def test_one_sequence_is_repeated_over_the_batch(tmp_path):
    memory = ntm()
    state = stepped_state(memory)
    path = tmp_path / "one.safetensors"
    save_memory(path, memory, state, index=1)
    assert load_file(str(path))["memory"].shape == (1, 6, 4)
    loaded = load_memory(path, memory, batch_size=5)
    assert loaded.memory.shape == (5, 6, 4)
    assert all(torch.equal(loaded.memory[i], state.memory[1]) for i in range(5))


def test_mismatched_memory_is_a_usage_error(tmp_path):
    memory = ntm()
    path = tmp_path / "mem.safetensors"
    save_memory(path, memory, stepped_state(memory))
    with pytest.raises(UsageError, match="does not fit this memory"):
        load_memory(path, ntm(slots=7), batch_size=3)
    with pytest.raises(UsageError, match="holds 3 sequences"):
        load_memory(path, memory, batch_size=2)
    path.write_bytes(b"garbage")
    with pytest.raises(UsageError, match="corrupt"):
        load_memory(path, memory)


def test_export_from_a_run_and_start_a_new_run_from_it(tmp_path):
    first = tmp_path / "first"
    assert run_nma("run", *TINY, "--steps", "5", "--out", str(first)).code == 0
    memory_file = tmp_path / "knowledge.safetensors"
    exported = run_nma("export-memory", str(first), str(memory_file))
    assert exported.code == 0, exported.output
    saved = load_file(str(memory_file))
    assert saved["memory"].shape == (1, 12, 6)

    second = tmp_path / "second"
    result = run_nma(
        "run", *TINY, "--steps", "2", "--out", str(second),
        "--set", f"train.memory_init='{memory_file}'",
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "memory_init" in (second / "config.toml").read_text()

    bad = run_nma(
        "run", *TINY, "--set", "memory.slots=13", "--steps", "1", "--out", str(tmp_path / "x"),
        "--set", f"train.memory_init='{memory_file}'",
    )  # fmt: skip
    assert bad.code == 2 and "does not fit this memory" in " ".join(bad.output.split())
