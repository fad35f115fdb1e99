"""The plugin registry: entry-point discovery, component registration, failures.

Plugins are modules named by entry points in the group ``nma``. Each is loaded on
its own (pluggy's ``load_setuptools_entrypoints`` stops at the first broken one),
so a plugin that fails to import or to register is recorded as failed with its
reason while every other plugin keeps working. Plugins can be disabled by their
entry-point name or their distribution name with ``NMA_DISABLE_PLUGINS``
(comma-separated), as pytest's ``-p no:NAME`` does.
"""

from __future__ import annotations

import difflib
import os
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Literal

import pluggy
from pydantic import BaseModel

from nma import hookspecs
from nma.addressing import Addressing
from nma.controller import Controller
from nma.errors import PluginError
from nma.memory import Memory
from nma.regularizer import Regularizer
from nma.task import Task

ENTRY_POINT_GROUP = "nma"
DISABLE_ENV = "NMA_DISABLE_PLUGINS"

Kind = Literal["memory", "addressing", "controller", "task", "regularizer"]
KINDS: tuple[Kind, ...] = ("memory", "addressing", "controller", "task", "regularizer")

BASES: dict[Kind, type] = {
    "memory": Memory,
    "addressing": Addressing,
    "controller": Controller,
    "task": Task,
    "regularizer": Regularizer,
}
HOOKS: dict[Kind, str] = {
    "memory": "nma_register_memories",
    "addressing": "nma_register_addressings",
    "controller": "nma_register_controllers",
    "task": "nma_register_tasks",
    "regularizer": "nma_register_regularizers",
}


@dataclass
class PluginInfo:
    """One plugin (an entry point) and how loading it went."""

    name: str
    distribution: str
    version: str
    status: Literal["ok", "failed", "disabled"] = "ok"
    error: str = ""
    traceback: str = ""
    module: ModuleType | None = None


@dataclass
class Component:
    """A registered component class and the plugin that registered it."""

    kind: Kind
    name: str
    cls: type
    plugin: PluginInfo
    rivals: list[PluginInfo] = field(default_factory=list)

    @property
    def status(self) -> str:
        """``ok``, or ``conflict`` when another distribution claims the same name."""
        return "conflict" if self.rivals else "ok"


class Registry:
    """Every component the installed plugins registered, by kind and name."""

    def __init__(self) -> None:
        self.plugin_manager = pluggy.PluginManager("nma")
        self.plugin_manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self.components: dict[Kind, dict[str, Component]] = {kind: {} for kind in KINDS}

    # -- loading -------------------------------------------------------------

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Load and register every plugin of the entry-point group, each on its own."""
        disabled = {
            name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()
        }
        found = sorted(entry_points(group=group), key=_entry_point_sort_key)
        for ep in found:
            dist = ep.dist.name if ep.dist is not None else "?"
            version = ep.dist.version if ep.dist is not None else "?"
            info = PluginInfo(name=ep.name, distribution=dist, version=version)
            self.plugins.append(info)
            if ep.name in disabled or dist in disabled:
                info.status = "disabled"
                continue
            try:
                module = ep.load()
            except BaseException as exc:  # noqa: BLE001 - a plugin may raise anything
                if isinstance(exc, KeyboardInterrupt):
                    raise
                _fail(info, f"import of {ep.value!r} failed", exc)
                continue
            self.add_plugin(module, info)

    def add_plugin(self, module: object, info: PluginInfo) -> None:
        """Register ``module``'s hooks and the components they register.

        The plugin's components are kept only if all its registration hooks succeed.
        """
        try:
            self.plugin_manager.register(module, name=f"{info.distribution}:{info.name}")
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            _fail(info, "its hooks are invalid", exc)
            return
        info.module = module if isinstance(module, ModuleType) else None
        staged: list[tuple[Kind, str, type]] = []
        try:
            for kind in KINDS:
                hook = getattr(module, HOOKS[kind], None)
                if hook is None:
                    continue
                hook(register=_stager(kind, staged))
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.plugin_manager.unregister(module)
            _fail(info, "registration failed", exc)
            return
        for kind, name, cls in staged:
            self._add(kind, name, cls, info)

    def _add(self, kind: Kind, name: str, cls: type, info: PluginInfo) -> None:
        existing = self.components[kind].get(name)
        if existing is not None:
            existing.rivals.append(info)
            return
        self.components[kind][name] = Component(kind, name, cls, info)

    # -- queries -------------------------------------------------------------

    def names(self, kind: Kind) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.components[kind])

    def get(self, kind: Kind, name: str) -> type[Any]:
        """The class registered as ``name``; a clear :class:`PluginError` otherwise."""
        component = self.components[kind].get(name)
        if component is None:
            raise PluginError(self._unknown_message(kind, name))
        if component.rivals:
            claimants = ", ".join(
                f"{p.distribution} {p.version} (entry point {p.name!r})"
                for p in [component.plugin, *component.rivals]
            )
            raise PluginError(
                f"The {kind} name {name!r} is claimed by more than one distribution: "
                f"{claimants}. Uninstall one of them, or disable one with "
                f"{DISABLE_ENV}=ENTRY_POINT_NAME."
            )
        return component.cls

    def _unknown_message(self, kind: Kind, name: str) -> str:
        choices = self.names(kind)
        message = f"Unknown {kind} {name!r}."
        close = difflib.get_close_matches(name, choices, n=1)
        if close:
            message += f" Did you mean {close[0]!r}?"
        message += " Valid choices: " + (", ".join(choices) if choices else "(none installed)")
        message += "."
        failed = [p for p in self.plugins if p.status == "failed"]
        if failed:
            reasons = "; ".join(f"{p.distribution} ({p.name}): {p.error}" for p in failed)
            message += (
                f" Some plugins failed to load and may be the one that provides it: {reasons}."
            )
        disabled = [p for p in self.plugins if p.status == "disabled"]
        if disabled:
            names = ", ".join(p.name for p in disabled)
            message += f" Disabled through {DISABLE_ENV}: {names}."
        return message

    def options_model(self, kind: Kind, name: str) -> type[BaseModel]:
        """The pydantic options model of a registered component."""
        return self.get(kind, name).Config

    def call_hook(self, hook_name: str, **kwargs: Any) -> list[Any]:
        """Call a run hook on every plugin that implements it."""
        return getattr(self.plugin_manager.hook, hook_name)(**kwargs)


def _entry_point_sort_key(ep: EntryPoint) -> tuple[str, str]:
    return (ep.dist.name if ep.dist is not None else "", ep.name)


def _fail(info: PluginInfo, what: str, exc: BaseException) -> None:
    info.status = "failed"
    info.error = f"{what}: {type(exc).__name__}: {exc}"
    info.traceback = "".join(traceback.format_exception(exc))


def _stager(kind: Kind, staged: list[tuple[Kind, str, type]]) -> Callable[[str, type], None]:
    base = BASES[kind]

    def register(name: str, cls: type) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"a {kind} name must be a non-empty string, not {name!r}")
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise TypeError(f"{kind} {name!r}: {cls!r} does not subclass nma.{base.__name__}")
        config = getattr(cls, "Config", None)
        if not (isinstance(config, type) and issubclass(config, BaseModel)):
            raise TypeError(f"{kind} {name!r}: {cls.__name__}.Config is not a pydantic model")
        staged.append((kind, name, cls))

    return register


_registry: Registry | None = None


def get_registry(reload: bool = False) -> Registry:
    """The process-wide registry, loading the entry points on first use."""
    global _registry
    if _registry is None or reload:
        registry = Registry()
        registry.load_entry_points()
        _registry = registry
    return _registry


def iter_failed(registry: Registry) -> Iterable[PluginInfo]:
    """Plugins that failed to load or register."""
    return (p for p in registry.plugins if p.status == "failed")
