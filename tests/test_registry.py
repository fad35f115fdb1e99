"""Plugin discovery through real entry-point metadata, failures, conflicts, disabling."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from nma import PluginError
from nma.registry import Registry
from tests.helpers import make_distribution

GOOD = """
from pydantic import Field
from nma import Controller, Options, hookimpl

class EchoController(Controller):
    '''Passes its input through.'''
    class Config(Options):
        gain: float = Field(1.0, gt=0, description="Multiplier.")
    def __init__(self, config, input_size):
        super().__init__(config, input_size)
        self.output_size = input_size
    def forward(self, x, state):
        return x * self.config.gain, state

@hookimpl
def nma_register_controllers(register):
    register("echo-{suffix}", EchoController)
"""


def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *dists: tuple[str, str, str]) -> Registry:
    """Install ``(dist, module, source)`` distributions under tmp_path and load the registry."""
    site = tmp_path / "site"
    for dist, module, source in dists:
        make_distribution(site, dist, module, source)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    registry = Registry()
    registry.load_entry_points()
    return registry


def test_external_distribution_is_discovered(tmp_path, monkeypatch):
    registry = load(tmp_path, monkeypatch, ("acme-nma", "acme_plugin_a", GOOD.format(suffix="a")))
    component = registry.components["controller"]["echo-a"]
    assert component.plugin.distribution == "acme-nma"
    assert component.plugin.version == "0.3.1"
    assert registry.get("controller", "echo-a").__name__ == "EchoController"
    # the first-party plugins are discovered the same way, beside it
    assert "copy" in registry.names("task")
    assert registry.components["task"]["copy"].plugin.distribution == "nma-tasks"


def test_plugin_failing_to_import_is_recorded_and_others_work(tmp_path, monkeypatch):
    registry = load(
        tmp_path,
        monkeypatch,
        ("broken-nma", "broken_plugin_b", "raise RuntimeError('kaboom at import')\n"),
        ("acme-nma", "acme_plugin_b", GOOD.format(suffix="b")),
    )
    broken = next(p for p in registry.plugins if p.distribution == "broken-nma")
    assert broken.status == "failed"
    assert "kaboom at import" in broken.error
    assert registry.get("controller", "echo-b")
    assert registry.get("memory", "ntm")


def test_plugin_failing_to_register_keeps_none_of_its_components(tmp_path, monkeypatch):
    source = GOOD.format(suffix="c") + (
        "\n@hookimpl\ndef nma_register_tasks(register):\n    raise ValueError('no tasks today')\n"
    )
    registry = load(tmp_path, monkeypatch, ("half-nma", "half_plugin_c", source))
    plugin = next(p for p in registry.plugins if p.distribution == "half-nma")
    assert plugin.status == "failed"
    assert "no tasks today" in plugin.error
    assert "echo-c" not in registry.names("controller")


def test_registering_a_non_component_fails_the_plugin(tmp_path, monkeypatch):
    source = (
        "from nma import hookimpl\n"
        "@hookimpl\n"
        "def nma_register_memories(register):\n"
        "    register('not-a-memory', dict)\n"
    )
    registry = load(tmp_path, monkeypatch, ("odd-nma", "odd_plugin_d", source))
    plugin = next(p for p in registry.plugins if p.distribution == "odd-nma")
    assert plugin.status == "failed"
    assert "does not subclass nma.Memory" in plugin.error


def test_duplicate_name_is_an_error_naming_both_distributions(tmp_path, monkeypatch):
    registry = load(
        tmp_path,
        monkeypatch,
        ("first-nma", "first_plugin_e", GOOD.format(suffix="dup")),
        ("second-nma", "second_plugin_e", GOOD.format(suffix="dup")),
    )
    with pytest.raises(PluginError) as info:
        registry.get("controller", "echo-dup")
    message = str(info.value)
    assert "first-nma" in message and "second-nma" in message
    assert registry.components["controller"]["echo-dup"].status == "conflict"


def test_duplicate_of_a_builtin_name_is_a_conflict(tmp_path, monkeypatch):
    source = GOOD.replace('"echo-{suffix}"', '"lstm"')
    registry = load(tmp_path, monkeypatch, ("shadow-nma", "shadow_plugin_f", source))
    with pytest.raises(PluginError, match="nma-plugins.*shadow-nma|shadow-nma.*nma-plugins"):
        registry.get("controller", "lstm")


def test_disable_by_entry_point_or_distribution(tmp_path, monkeypatch):
    monkeypatch.setenv("NMA_DISABLE_PLUGINS", "acme_plugin_g, nma-tasks")
    registry = load(tmp_path, monkeypatch, ("acme-nma", "acme_plugin_g", GOOD.format(suffix="g")))
    statuses = {p.name: p.status for p in registry.plugins}
    assert statuses["acme_plugin_g"] == "disabled"
    assert statuses["tasks"] == "disabled"
    assert "echo-g" not in registry.names("controller")
    with pytest.raises(PluginError, match="Disabled through NMA_DISABLE_PLUGINS"):
        registry.get("task", "copy")


def test_unknown_name_suggests_a_close_match():
    registry = Registry()
    registry.load_entry_points()
    with pytest.raises(PluginError) as info:
        registry.get("memory", "ntn")
    assert "Did you mean 'ntm'?" in str(info.value)
    assert "Valid choices: " in str(info.value) and "ntm" in str(info.value)
