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
from nma.experiments.runner import ExperimentFailed, check_resumable, run_experiment
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
    "ExperimentFailed",
    "Outcome",
    "Target",
    "experiment_names",
    "prepare_out",
    "run_named",
    "run_several",
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
    resume: bool = False,
) -> Path:
    """``nma experiment NAME``: run experiment ``name`` into ``out`` (its configurations
    in ``out/<configuration>``), or for ``all`` every experiment into ``out/<name>`` with
    one combined report; return the ``results.md`` written into ``out``.

    ``out`` defaults to ``runs/experiment-<time>-<name>``; it must be empty or new,
    unless ``resume``: then the configurations that finished there are kept and the
    others trained (see :func:`nma.experiments.runner.run_experiment`).
    """
    names = experiment_names(name)
    if resume and out is None:
        raise UsageError("--resume goes on with the experiments in --out DIR: give --out.")
    out = out or Path("runs") / f"experiment-{datetime.now():%Y%m%d-%H%M%S}-{name}"
    if name == ALL:
        return run_several(
            names, out, "The experiment suite", quick, device, registry, console, resume
        )
    out = prepare_out(out, resume)
    check_resumable(EXPERIMENTS[name], out, quick)
    registry = registry or get_registry()
    console = console or Console(stderr=True)
    title = EXPERIMENTS[name].title
    try:
        outcomes = run_experiment(EXPERIMENTS[name], out, registry, console, quick, device, resume)
    except ExperimentFailed as failed:
        write_results(failed.outcomes, out, title, quick, {name: str(failed)})
        raise
    return write_results(outcomes, out, title, quick)


def run_several(
    names: list[str],
    out: Path,
    title: str,
    quick: bool = False,
    device: str | None = None,
    registry: Registry | None = None,
    console: Console | None = None,
    resume: bool = False,
) -> Path:
    """Run the experiments ``names``, each into ``out/<name>`` with its own
    ``results.md``, and write the combined ``out/results.md`` (returned). With
    ``resume``, the configurations that finished in ``out`` before are kept.

    An experiment that fails does not stop the others: its finished configurations
    and its error go into the reports, and once every experiment has had its turn an
    :class:`ExperimentFailed` names the failures (the combined report is written
    first, and also when the suite is interrupted).
    """
    for name in names:
        experiment_names(name)  # every name checked before any training
    out = prepare_out(out, resume)
    for name in names:
        check_resumable(EXPERIMENTS[name], out / name, quick)
    registry = registry or get_registry()
    console = console or Console(stderr=True)
    every: list[Outcome] = []
    failures: dict[str, str] = {}
    try:
        for name in names:
            folder = out / name
            try:
                outcomes = run_experiment(
                    EXPERIMENTS[name], folder, registry, console, quick, device, resume
                )
            except ExperimentFailed as failed:
                outcomes, failures[name] = failed.outcomes, str(failed)
                console.print(f"[bold red]{name} failed:[/bold red] {failed}")
            title_of = EXPERIMENTS[name].title
            write_results(outcomes, folder, title_of, quick, _only(failures, name))
            every += outcomes
    finally:
        path = write_results(every, out, title, quick, failures)
    if failures:
        raise ExperimentFailed(
            f"{len(failures)} of the {len(names)} experiments failed "
            f"({', '.join(failures)}); the others finished, and {path} reports them all "
            f"with the errors. The first error: {next(iter(failures.values()))}",
            every,
        )
    return path


def _only(failures: dict[str, str], name: str) -> dict[str, str]:
    return {name: failures[name]} if name in failures else {}


def prepare_out(out: Path, resume: bool = False) -> Path:
    """Make the output directory; a :class:`nma.UsageError` if it is a file, or holds
    anything and ``resume`` is off."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"The output directory {str(out)!r} is a file; choose another.")
    if out.exists() and not resume and any(out.iterdir()):
        raise UsageError(
            f"The output directory {str(out)!r} is not empty; choose another with --out, "
            f"or go on with the experiments there with --resume."
        )
    out.mkdir(parents=True, exist_ok=True)
    return out
