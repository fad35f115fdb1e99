"""The experiment suite (``nma experiment NAME``): the seed's experiments, each a list
of ``nma run`` (or ``nma continual``) configurations with tuned full sizes and
``--quick`` smoke-test sizes, whose results are written to ``results.md`` beside the
published or claimed targets. Tasks and memories are named, never imported: they come
from the plugin registry."""

from __future__ import annotations

import difflib
from datetime import datetime
from pathlib import Path

from rich.console import Console

from nma.errors import UsageError
from nma.experiments import (
    associative,
    babi,
    continual,
    copy,
    knowledge,
    logical,
    priority_sort,
    temporal,
)
from nma.experiments.report import Outcome, write_results
from nma.experiments.runner import run_experiment
from nma.experiments.spec import Configuration, Experiment, Target
from nma.registry import Registry, get_registry

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in (
        copy.EXPERIMENT,
        associative.EXPERIMENT,
        priority_sort.EXPERIMENT,
        continual.EXPERIMENT,
        logical.EXPERIMENT,
        temporal.EXPERIMENT,
        knowledge.EXPERIMENT,
        babi.EXPERIMENT,
    )
}
"""Every experiment by its command-line name, in the order ``all`` runs them."""

ALL = "all"

__all__ = [
    "ALL",
    "EXPERIMENTS",
    "Configuration",
    "Experiment",
    "Outcome",
    "Target",
    "experiment_names",
    "run_named",
]


def experiment_names(name: str) -> list[str]:
    """The experiments ``name`` stands for (every one for ``all``); a
    :class:`nma.UsageError` for an unknown name."""
    if name == ALL:
        return list(EXPERIMENTS)
    if name in EXPERIMENTS:
        return [name]
    choices = [*EXPERIMENTS, ALL]
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise UsageError(f"Unknown experiment {name!r}.{hint} Experiments: {', '.join(choices)}.")


def run_named(
    name: str,
    out: Path | None = None,
    quick: bool = False,
    device: str | None = None,
    registry: Registry | None = None,
    console: Console | None = None,
) -> Path:
    """Run experiment ``name`` (or ``all``, each into ``out/<name>`` and one combined
    report) and return the ``results.md`` written into ``out``.

    ``out`` defaults to ``runs/experiment-<time>-<name>``; it must be empty or new.
    """
    names = experiment_names(name)
    registry = registry or get_registry()
    console = console or Console(stderr=True)
    out = out or Path("runs") / f"experiment-{datetime.now():%Y%m%d-%H%M%S}-{name}"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(
            f"The output directory {str(out)!r} is not empty (or is a file); choose another "
            f"with --out."
        )
    out.mkdir(parents=True, exist_ok=True)
    if name != ALL:
        outcomes = run_experiment(EXPERIMENTS[name], out, registry, console, quick, device)
        return write_results(outcomes, out, EXPERIMENTS[name].title, quick)
    every: list[Outcome] = []
    for each in names:
        folder = out / each
        outcomes = run_experiment(EXPERIMENTS[each], folder, registry, console, quick, device)
        write_results(outcomes, folder, EXPERIMENTS[each].title, quick)
        every += outcomes
    return write_results(every, out, "The experiment suite", quick)
