"""The hooks a plugin may implement. Every hook's name starts with ``nma_``.

A plugin is a module named by an entry point in the group ``nma``; it implements
hooks with the :data:`nma.hookimpl` decorator::

    from nma import hookimpl

    @hookimpl
    def nma_register_memories(register):
        register("my-memory", MyMemory)

Each ``nma_register_*`` hook receives a ``register(name, cls)`` callback for one
kind of component. The run hooks let loggers observe a run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import typer

    from nma.run import RunContext

hookspec = pluggy.HookspecMarker("nma")
hookimpl = pluggy.HookimplMarker("nma")

Register = Callable[[str, type], None]


@hookspec
def nma_register_memories(register: Register) -> None:
    """Register :class:`nma.Memory` subclasses: ``register("ntm", NTMMemory)``."""


@hookspec
def nma_register_addressings(register: Register) -> None:
    """Register :class:`nma.Addressing` subclasses."""


@hookspec
def nma_register_controllers(register: Register) -> None:
    """Register :class:`nma.Controller` subclasses."""


@hookspec
def nma_register_tasks(register: Register) -> None:
    """Register :class:`nma.Task` subclasses."""


@hookspec
def nma_register_regularizers(register: Register) -> None:
    """Register :class:`nma.Regularizer` subclasses."""


@hookspec
def nma_register_commands(app: typer.Typer) -> None:
    """Add subcommands to the ``nma`` CLI: ``@app.command()`` or ``app.add_typer(...)``."""


@hookspec
def nma_run_start(run: RunContext) -> None:
    """A run is about to train (after assembly, after a resume has loaded its checkpoint)."""


@hookspec
def nma_train_step(run: RunContext, step: int, metrics: dict[str, Any]) -> None:
    """A training step finished; ``metrics`` holds at least ``loss``."""


@hookspec
def nma_evaluation(run: RunContext, step: int, metrics: dict[str, float]) -> None:
    """An evaluation on the held-out split finished."""


@hookspec
def nma_run_end(run: RunContext, metrics: dict[str, float]) -> None:
    """The run finished; ``metrics`` is the final evaluation."""
