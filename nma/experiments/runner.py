"""Running an experiment: each configuration trained and evaluated through the same
code as ``nma run`` (:func:`nma.run.create_run`, :func:`nma.trainer.train`) or, for a
continual experiment, ``nma continual`` (:func:`nma.continual.compare_methods`); its
figures drawn by :mod:`nma.run_figures`; its rows written to ``results.md``.

A continual experiment's derived metrics, for the compared method ``m`` (the first
method that is neither ``naive`` nor ``joint``):

- ``forgetting_reduction = 1 − F(m) / F(naive)``, ``F`` the average forgetting
  (Chaudhry et al. 2018), i.e. how much less ``m`` forgets than naive fine-tuning;
- ``acc_below_joint = ACC(joint) − ACC(m)``, ``ACC`` the final average accuracy.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from nma.config import resolve, set_path
from nma.continual import JOINT, NAIVE, MethodResult, compare_methods, write_comparison
from nma.continual_record import FIGURE_FILE
from nma.errors import NmaError
from nma.experiments.report import Outcome, Row
from nma.experiments.spec import Configuration, Experiment
from nma.registry import Registry


class ExperimentFailed(NmaError):
    """A configuration of an experiment failed; ``outcomes`` holds the configurations
    that finished before it, so that a report can still show them."""

    def __init__(self, message: str, outcomes: list[Outcome]) -> None:
        super().__init__(message)
        self.outcomes = outcomes


def raw_config(settings: dict[str, Any]) -> dict[str, Any]:
    """Dotted settings (``train.steps``) as the nested raw configuration ``resolve`` takes."""
    raw: dict[str, Any] = {}
    for key, value in settings.items():
        raw = set_path(raw, key.split("."), value)
    return raw


def run_experiment(
    experiment: Experiment,
    out: Path,
    registry: Registry,
    console: Console,
    quick: bool = False,
    device: str | None = None,
    resume: bool = False,
) -> list[Outcome]:
    """Train and evaluate every configuration of ``experiment`` in ``out/<configuration>``.

    Each configuration that finishes leaves its ``outcome.json``; with ``resume`` a
    configuration that has one, with the same settings, is kept as it is; the
    directory of one that did not finish, or whose settings have changed since, is
    moved aside (``<configuration>.unfinished-<n>``) before training it again. A
    configuration that fails raises :class:`ExperimentFailed`, carrying the
    outcomes of the configurations that finished before it.
    """
    outcomes = []
    for config in experiment.configurations:
        settings = config.settings(quick)
        if device is not None:
            settings["train.device"] = device
        directory = out / config.name
        if resume:
            kept = Outcome.load(directory, quick)
            if kept is not None and kept.settings == as_json(settings):
                console.print(
                    f"[bold]{experiment.name}[/bold] / {config.name}: finished before "
                    f"({kept.seconds:.0f} s), kept"
                )
                outcomes.append(kept)
                continue
            why = "its settings changed since" if kept is not None else "it did not finish"
            _move_aside(directory, why, console)
        console.print(f"[bold]{experiment.name}[/bold] / {config.name}: training in {directory}")
        try:
            if experiment.kind == "continual":
                outcome = _continual(experiment, config, settings, directory, registry, console)
            else:
                outcome = _single_run(experiment, config, settings, directory, registry, console)
        except Exception as exc:
            cause = str(exc) if isinstance(exc, NmaError) else f"{type(exc).__name__}: {exc}"
            raise ExperimentFailed(
                f"The experiment {experiment.name!r} failed in its configuration "
                f"{config.name!r} ({cause}). What it wrote is in {directory}; rerun with "
                f"NMA_DEBUG=1 for the traceback.",
                outcomes,
            ) from exc
        outcome.settings = settings
        outcome.save(quick)
        outcomes.append(outcome)
    return outcomes


def check_resumable(experiment: Experiment, out: Path, quick: bool) -> None:
    """Read every finished configuration of ``experiment`` kept in ``out``: a
    :class:`nma.UsageError` before any training if one is unreadable or of the other
    size."""
    for config in experiment.configurations:
        Outcome.load(out / config.name, quick)


def as_json(settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` as they read back from ``outcome.json``."""
    return json.loads(json.dumps(settings, default=str))


def _move_aside(directory: Path, why: str, console: Console) -> None:
    """Rename the directory of a configuration to train again, keeping what it wrote."""
    if not directory.exists():
        return
    n = 1
    while (aside := directory.with_name(f"{directory.name}.unfinished-{n}")).exists():
        n += 1
    directory.rename(aside)
    console.print(f"{directory}: {why}; moved to {aside.name}, training it again")


def _single_run(
    experiment: Experiment,
    config: Configuration,
    settings: dict[str, Any],
    directory: Path,
    registry: Registry,
    console: Console,
) -> Outcome:
    from nma.run import create_run
    from nma.run_figures import draw_or_explain
    from nma.trainer import train

    raw = set_path(raw_config(settings), ["train", "out_dir"], str(directory))
    run = create_run(resolve(raw, registry), registry, console)
    started = time.perf_counter()
    final = train(run, show_progress=False)
    seconds = time.perf_counter() - started
    figures = [p for p in draw_or_explain(run) if p.suffix == ".png"]
    rows = [
        Row(experiment.name, config.name, t.metric, float(final[t.metric]), t)
        for t in config.targets
        if t.metric in final
    ]
    main = run.parts.task.main_metric
    if main in final and all(row.metric != main for row in rows):
        rows.append(Row(experiment.name, config.name, main, float(final[main])))
    return Outcome(
        experiment.name, config.name, config.provenance, rows, figures, seconds, directory
    )


def _continual(
    experiment: Experiment,
    config: Configuration,
    settings: dict[str, Any],
    directory: Path,
    registry: Registry,
    console: Console,
) -> Outcome:
    directory.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results = compare_methods(
        raw_config(settings), list(config.methods), directory, registry, console
    )
    seconds = time.perf_counter() - started
    write_comparison(results, directory, f"# {experiment.title}\n")
    rows = _continual_rows(experiment, config, results)
    figures = [r.run_dir / FIGURE_FILE for r in results if (r.run_dir / FIGURE_FILE).is_file()]
    return Outcome(
        experiment.name, config.name, config.provenance, rows, figures, seconds, directory
    )


def _continual_rows(
    experiment: Experiment, config: Configuration, results: list[MethodResult]
) -> list[Row]:
    summaries = {r.method: r.record.summary() for r in results}
    derived: dict[str, float] = {}
    compared = next((m for m in summaries if m not in (NAIVE, JOINT)), None)
    if compared is not None and NAIVE in summaries:
        naive = summaries[NAIVE].get("forgetting", 0.0)
        ours = summaries[compared].get("forgetting", 0.0)
        derived["forgetting_reduction"] = 1.0 - ours / naive if naive > 0 else 0.0
    if compared is not None and JOINT in summaries:
        derived["acc_below_joint"] = summaries[JOINT]["acc"] - summaries[compared]["acc"]
    rows = [
        Row(experiment.name, config.name, t.metric, derived[t.metric], t)
        for t in config.targets
        if t.metric in derived
    ]
    for method, summary in summaries.items():
        for key in ("acc", "forgetting"):
            if key in summary:
                rows.append(Row(experiment.name, config.name, f"{method} {key}", summary[key]))
    return rows
