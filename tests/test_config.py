"""Configuration: precedence of sources, value parsing, and one-paragraph errors."""

from __future__ import annotations

import pytest
import torch
from pydantic import Field

from nma import Memory, Options, UsageError, hookimpl
from nma.config import build_raw, parse_assignment, resolve
from nma.registry import PluginInfo, Registry, get_registry


@pytest.fixture(scope="module")
def registry() -> Registry:
    return get_registry()


def test_defaults_then_toml_then_set(tmp_path, registry):
    path = tmp_path / "run.toml"
    path.write_text(
        "[memory]\nslots = 64\nwidth = 12\n[train]\nsteps = 7\nlr = 0.01\n", encoding="utf-8"
    )
    raw = build_raw(path, {"train.steps": 9}, ["memory.slots=32", "train.seed=3"])
    config = resolve(raw, registry)
    assert config.memory.slots == 32  # --set beats the file
    assert config.memory.width == 12  # the file beats the default
    assert config.memory.read_heads == 1  # default
    assert config.train.steps == 9  # shortcut beats the file
    assert config.train.lr == 0.01
    assert config.train.seed == 3
    assert config.addressing_name == "ntm"  # the memory's default scheme


def test_resolved_config_round_trips_through_toml(tmp_path, registry):
    raw = build_raw(None, {"components.regularizer": ["l2"]}, ["regularizer.l2.weight=0.5"])
    config = resolve(raw, registry)
    path = tmp_path / "saved.toml"
    path.write_text(config.to_toml(), encoding="utf-8")
    again = resolve(build_raw(path, {}, []), registry)
    assert again.to_dict() == config.to_dict()
    assert again.regularizers["l2"].weight == 0.5


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("train.lr=0.001", ["train", "lr"], 0.001),
        ("train.steps=12", ["train", "steps"], 12),
        ("task.name=abc", ["task", "name"], "abc"),
        ('task.name="a b"', ["task", "name"], "a b"),
        ("x.flag=true", ["x", "flag"], True),
        ("components.regularizer=['l2']", ["components", "regularizer"], ["l2"]),
        ("regularizer.l2.weight=1e-3", ["regularizer", "l2", "weight"], 1e-3),
    ],
)
def test_parse_assignment(text, path, value):
    assert parse_assignment(text) == (path, value)


@pytest.mark.parametrize("text", ["train.lr", "lr=3", "=3", "train..lr=3"])
def test_bad_assignment_syntax(text):
    with pytest.raises(UsageError, match="section.key=value"):
        parse_assignment(text)


def test_unknown_option_suggests_close_match(registry):
    with pytest.raises(UsageError) as info:
        resolve(build_raw(None, {}, ["memory.slotz=3"]), registry)
    message = str(info.value)
    assert "unknown option 'slotz' of memory 'ntm'" in message
    assert "Did you mean 'slots'?" in message
    assert "Valid options: read_heads, slots, width, write_heads" in message


def test_bad_value_names_option_and_limit(registry):
    with pytest.raises(UsageError) as info:
        resolve(build_raw(None, {}, ["train.lr=-1"]), registry)
    assert "'train.lr'" in str(info.value)
    assert "greater than 0" in str(info.value)


def test_unknown_section(registry):
    with pytest.raises(UsageError, match="Did you mean 'train'"):
        build_raw(None, {}, ["trian.steps=3"])


def test_unknown_plugin_name(registry):
    with pytest.raises(UsageError, match="Unknown controller 'lstn'. Did you mean 'lstm'"):
        resolve(build_raw(None, {"components.controller": "lstn"}, []), registry)


def test_options_for_an_unused_regularizer(registry):
    with pytest.raises(UsageError, match="does not use"):
        resolve(build_raw(None, {}, ["regularizer.l2.weight=1"]), registry)


def test_bad_toml_file(tmp_path, registry):
    path = tmp_path / "bad.toml"
    path.write_text("[train\nsteps = ", encoding="utf-8")
    with pytest.raises(UsageError, match="not valid TOML"):
        build_raw(path, {}, [])
    with pytest.raises(UsageError, match="Cannot read"):
        build_raw(tmp_path / "missing.toml", {}, [])


def test_task_cross_field_validation(registry):
    with pytest.raises(UsageError, match="min_length .* exceeds max_length"):
        resolve(build_raw(None, {}, ["task.min_length=5", "task.max_length=2"]), registry)


class _PlainMemory(Memory):
    """A memory that takes no addressing plugin."""

    class Config(Options):
        size: int = Field(4, ge=1)

    def __init__(self, config, addressing=None):
        super().__init__(config, addressing)
        self.interface_size = 1
        self.read_size = 1

    def initial_state(self, batch_size, device, dtype):
        return torch.zeros(batch_size, 1, device=device, dtype=dtype)

    def forward(self, interface, state):
        return interface, interface


class _PlainPlugin:
    @hookimpl
    def nma_register_memories(self, register):
        register("plain", _PlainMemory)


def test_addressing_rejected_for_memory_without_it():
    registry = Registry()
    registry.load_entry_points()
    registry.add_plugin(_PlainPlugin(), PluginInfo("plain", "plain-dist", "1.0"))
    config = resolve(build_raw(None, {"components.memory": "plain"}, []), registry)
    assert config.addressing is None and config.addressing_name is None
    with pytest.raises(UsageError, match="takes no addressing scheme"):
        resolve(
            build_raw(None, {"components.memory": "plain", "components.addressing": "ntm"}, []),
            registry,
        )


def test_recompute_refused_for_in_place_memories(registry):
    with pytest.raises(UsageError, match="cannot be run again"):
        resolve(
            build_raw(None, {"components.memory": "sam"}, ["train.recompute_chunk=4"]), registry
        )
    config = resolve(
        build_raw(None, {"components.memory": "dnc"}, ["train.recompute_chunk=4"]), registry
    )
    assert config.train.recompute_chunk == 4
