"""Build a run's components from a resolved configuration."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from nma.config import RunConfig
from nma.controller import Controller
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
        input_size=task.input_size + memory.fed_reads_size(),
    )
    model = MemoryModel(controller, memory, task.output_size, task.output_channels)
    regularizers = {
        name: _construct(registry, "regularizer", name, options)
        for name, options in config.regularizers.items()
    }
    for regularizer in regularizers.values():
        regularizer.bind(task)
    return Components(task=task, model=model, regularizers=regularizers)


def build_memory(
    name: str,
    options: dict[str, Any] | None = None,
    addressing: str | None = None,
    addressing_options: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> Memory:
    """Build a registered memory by name, as a plain ``nn.Module``.

    Args:
        name: the memory's registered name (``nma list-plugins``).
        options: its options (validated; defaults for the rest).
        addressing: the addressing scheme for memories that take one; ``None``
            uses the memory's default.
        addressing_options: the scheme's options.
        registry: the registry to use; the process-wide one by default.

    Raises:
        UsageError: for unknown names or invalid options.
    """
    from nma.config import validate_options
    from nma.registry import get_registry

    registry = registry or get_registry()
    cls = registry.get("memory", name)
    config = validate_options(cls.Config, options or {}, "memory", name)
    factory = None
    scheme = addressing or cls.default_addressing
    if scheme is not None:
        addressing_cls = registry.get("addressing", scheme)
        addressing_config = validate_options(
            addressing_cls.Config, addressing_options or {}, "addressing", scheme
        )

        def factory(width: int, heads: int) -> Any:
            return addressing_cls(addressing_config, width=width, heads=heads)

    return _construct(registry, "memory", name, config, addressing=factory)


def build_controller(
    name: str,
    input_size: int,
    options: dict[str, Any] | None = None,
    registry: Registry | None = None,
) -> Controller:
    """Build a registered controller by name, as a plain ``nn.Module``.

    Args:
        name: the controller's registered name (``lstm``, ``gru``, ``mlp``, ...).
        input_size: the width of one step's input.
        options: its options (validated; defaults for the rest).
        registry: the registry to use; the process-wide one by default.

    Raises:
        UsageError: for unknown names or invalid options.
    """
    from nma.config import validate_options
    from nma.registry import get_registry

    registry = registry or get_registry()
    cls = registry.get("controller", name)
    config = validate_options(cls.Config, options or {}, "controller", name)
    return _construct(registry, "controller", name, config, input_size=input_size)


def build_regularizer(
    name: str, options: dict[str, Any] | None = None, registry: Registry | None = None
) -> Regularizer:
    """Build a registered regularizer by name (``ewc``, ``si``, ``replay``, ...).

    Args:
        name: the regularizer's registered name (``nma list-plugins``).
        options: its options (validated; defaults for the rest).
        registry: the registry to use; the process-wide one by default.

    Raises:
        UsageError: for unknown names or invalid options.
    """
    from nma.config import validate_options
    from nma.registry import get_registry

    registry = registry or get_registry()
    cls = registry.get("regularizer", name)
    config = validate_options(cls.Config, options or {}, "regularizer", name)
    return _construct(registry, "regularizer", name, config)


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
