"""Recording a memory's steps: what is kept, that it is faithful, that it changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest
import torch
from safetensors.torch import save_file
from torch import Tensor

from nma import Memory, Options, UsageError
from nma.build import build_memory
from nma.model import MemoryModel
from nma.recording import Recorder, Recording, is_content, snapshot_steps
from nma.registry import get_registry
from tests.api_helpers import memory_names, small_options


def tiny_model(memory: str, seed: int = 0) -> MemoryModel:
    torch.manual_seed(seed)
    mem = build_memory(memory, small_options(memory))
    cls = get_registry().get("controller", "lstm")
    return MemoryModel(cls(cls.Config(hidden_size=8), 3 + mem.read_size), mem, output_size=2)


class ToyState(NamedTuple):
    memory: Tensor
    usage: Tensor
    read_weights: Tensor
    secret: Tensor


class ToyMemory(Memory):
    """A memory that overrides nothing about inspection."""

    def __init__(self) -> None:
        super().__init__(Options())
        self.interface_size, self.read_size = 3, 3

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> ToyState:
        zeros = torch.zeros(batch_size, 4, device=device, dtype=dtype)
        return ToyState(zeros.new_zeros(batch_size, 4, 3), zeros, zeros.unsqueeze(1), zeros)

    def forward(self, interface: Tensor, state: ToyState) -> tuple[Tensor, ToyState]:
        memory = state.memory + interface.unsqueeze(1)
        usage = (state.usage + 0.25).clamp(max=1)
        return memory[:, 0], ToyState(memory, usage, state.read_weights, state.secret + 1)


def test_default_inspect_returns_the_common_state_fields() -> None:
    toy = ToyMemory()
    seen = toy.inspect(toy.initial_state(2, torch.device("cpu"), torch.float32))
    assert set(seen) == {"memory", "usage", "read_weights"}
    recording = Recorder(sequences=1, snapshots=2).record_memory(toy, torch.ones(5, 2, 3))
    assert recording.memory == "ToyMemory" and recording.sequences == 1
    assert recording.series["usage"][:, 0, 0].tolist() == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert recording.content_steps.tolist() == [1, 5]
    assert recording.contents["memory"][:, 0, 0, 0].tolist() == [1.0, 5.0]


def test_snapshot_steps_are_spread_and_keep_the_ends() -> None:
    assert snapshot_steps(10, 4) == [1, 4, 7, 10]
    assert snapshot_steps(3, 8) == [1, 2, 3]
    assert snapshot_steps(7, 1) == [7]
    assert snapshot_steps(0, 3) == []
    assert is_content("memory") and is_content("level1_memory") and not is_content("usage")


@pytest.mark.parametrize("memory", memory_names())
def test_recording_matches_the_memory_step_by_step(memory: str) -> None:
    """Every series and snapshot equals what ``inspect`` said at that step, even for
    memories that update their state in place (each step is copied when recorded)."""
    model = tiny_model(memory)
    inputs = torch.randn(5, 3, 3, generator=torch.Generator().manual_seed(1))
    recording = Recorder(sequences=2, snapshots=3).record(model, inputs, label=memory)
    assert recording.steps == 5 and recording.sequences == 2
    assert recording.content_steps.tolist() == [1, 3, 5]
    expected: list[dict[str, Tensor]] = []
    with torch.no_grad():
        state = model.initial_state(2)
        for x in inputs[:, :2]:
            _, state = model.step(x, state)
            expected.append({k: v.clone() for k, v in model.memory.inspect(state.memory).items()})
    assert set(recording.series) | set(recording.contents) == set(expected[0])
    for name, values in recording.series.items():
        for t, seen in enumerate(expected):
            torch.testing.assert_close(
                values[t], seen[name].to(values.dtype), msg=f"{name} at {t + 1}"
            )
    for name, values in recording.contents.items():
        for i, t in enumerate(recording.content_steps.tolist()):
            torch.testing.assert_close(values[i], expected[t - 1][name].to(values.dtype))


def test_recording_changes_nothing_and_training_stays_bit_identical() -> None:
    """Train twice from one seed; the second time record between the steps."""

    def train(record: bool) -> tuple[dict[str, Tensor], Tensor]:
        model = tiny_model("dnc", seed=3)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        data = torch.Generator().manual_seed(4)
        torch.manual_seed(5)
        for _ in range(3):
            inputs = torch.randn(4, 2, 3, generator=data)
            loss = model(inputs)[0].square().mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if record:
                Recorder(sequences=1).record(model, inputs)
                assert model.training  # its mode is given back
        return {k: v.clone() for k, v in model.state_dict().items()}, torch.get_rng_state()

    plain, plain_rng = train(record=False)
    recorded, recorded_rng = train(record=True)
    assert plain.keys() == recorded.keys()
    assert all(torch.equal(plain[k], recorded[k]) for k in plain)
    assert torch.equal(plain_rng, recorded_rng)


def test_recording_round_trips_through_safetensors(tmp_path: Path) -> None:
    recording = Recorder(sequences=2).record(tiny_model("sam"), torch.randn(4, 2, 3), "sam")
    path = recording.save(tmp_path / "recording.safetensors")
    loaded = Recording.load(path)
    assert loaded.memory == "sam"
    assert torch.equal(loaded.content_steps, recording.content_steps)
    for mine, theirs in ((recording.series, loaded.series), (recording.contents, loaded.contents)):
        assert mine.keys() == theirs.keys()
        assert all(torch.equal(mine[k], theirs[k]) for k in mine)
    assert loaded.series["read_indices"].dtype == torch.long


def test_loading_a_bad_recording_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file at all")
    save_file({"x": torch.zeros(2)}, str(tmp_path / "other.safetensors"))
    for name, fragment in [
        ("missing.safetensors", "does not exist"),
        ("junk.safetensors", "corrupt"),
        ("other.safetensors", "not an nma recording"),
    ]:
        with pytest.raises(UsageError, match=fragment):
            Recording.load(tmp_path / name)
