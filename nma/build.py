"""Build a run's components from a resolved configuration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from nma.config import RunConfig
from nma.errors import PluginError
from nma.memory import Memory
from nma.model import MemoryModel
from nma.registry import Kind, Registry
from nma.regularizer import Regularizer
from nma.task import Task


@dataclass
class Components:
    """The built parts of a run."""

    task: Task
    model: MemoryModel
    regularizers: dict[str, Regularizer]


def build_components(config: RunConfig, registry: Registry) -> Components:
    """Instantiate the task, the memory model and the regularizers of ``config``.

    Parameters are initialised from torch's global generator: seed it first.
    A component whose constructor raises becomes a :class:`PluginError` naming it.
    """
    comps = config.components
    task = _construct(registry, "task", comps.task, config.task)
    addressing_factory = None
    if config.addressing_name is not None:
        addressing_cls = registry.get("addressing", config.addressing_name)
        addressing_factory = partial(_construct_addressing, addressing_cls, config)
    memory: Memory = _construct(
        registry, "memory", comps.memory, config.memory, addressing=addressing_factory
    )
    controller = _construct(
        registry,
        "controller",
        comps.controller,
        config.controller,
        input_size=task.input_size + memory.read_size,
    )
    model = MemoryModel(controller, memory, task.output_size)
    regularizers = {
        name: _construct(registry, "regularizer", name, options)
        for name, options in config.regularizers.items()
    }
    return Components(task=task, model=model, regularizers=regularizers)


def _construct_addressing(cls: type, config: RunConfig, width: int, heads: int) -> Any:
    try:
        return cls(config.addressing, width=width, heads=heads)
    except Exception as exc:
        raise PluginError(
            f"The addressing {config.addressing_name!r} could not be built "
            f"({type(exc).__name__}: {exc})."
        ) from exc


def _construct(registry: Registry, kind: Kind, name: str, options: Any, **kwargs: Any) -> Any:
    cls = registry.get(kind, name)
    try:
        return cls(options, **kwargs)
    except PluginError:
        raise
    except Exception as exc:
        plugin = registry.components[kind][name].plugin
        raise PluginError(
            f"The {kind} {name!r} (from {plugin.distribution} {plugin.version}) could not be "
            f"built with the options {options.model_dump()} ({type(exc).__name__}: {exc})."
        ) from exc
