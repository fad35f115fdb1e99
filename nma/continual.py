"""Continual learning on a registered stream, from Python (:class:`ContinualExperiment`)
and from ``nma continual``: one stream, one memory model, one or several methods
(regularizers, naive fine-tuning, joint training). For your own data and models, see
:class:`nma.training.ContinualLearningTrainer`.

A *method* is ``naive`` (fine-tuning, no regularizer), ``joint`` (all experiences at
once: the upper reference), or the names of one or more regularizers joined by ``+``
(``ewc``, ``ewc+replay``).
"""

from __future__ import annotations

import copy
import difflib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nma.checkpoint import atomic_write_text
from nma.config import RunConfig, resolve, set_path
from nma.continual_record import ContinualRecord
from nma.errors import UsageError
from nma.registry import Registry, get_registry
from nma.stream import StreamTask

NAIVE = "naive"
JOINT = "joint"
COMPARISON_FILES = ("comparison.md", "comparison.json")


def stream_methods(registry: Registry) -> list[str]:
    """Every method name: naive, the continual-learning regularizers, joint."""
    regularizers = [n for n in registry.names("regularizer") if n != "l2"]
    return [NAIVE, *regularizers, JOINT]


def parse_method(method: str, registry: Registry) -> tuple[list[str], bool]:
    """The regularizers of ``method`` and whether it trains jointly."""
    if method == NAIVE:
        return [], False
    if method == JOINT:
        return [], True
    names = [part.strip() for part in method.split("+")]
    known = registry.names("regularizer")
    for name in names:
        if name not in known:
            choices = [NAIVE, JOINT, *known]
            close = difflib.get_close_matches(name, choices, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UsageError(
                f"Unknown method {method!r}: {name!r} is not a regularizer.{hint} A method is "
                f"{NAIVE!r}, {JOINT!r}, or regularizer names joined by '+' (ewc+replay); "
                f"regularizers: {', '.join(known)}."
            )
    return names, False


def check_stream(config: RunConfig, registry: Registry) -> None:
    """A :class:`UsageError` unless the configuration's task is a stream."""
    name = config.components.task
    if not issubclass(registry.get("task", name), StreamTask):
        streams = [
            n for n in registry.names("task") if issubclass(registry.get("task", n), StreamTask)
        ]
        raise UsageError(
            f"The task {name!r} is not a stream of experiences, so continual learning cannot "
            f"be measured on it. Streams: {', '.join(streams) or '(none installed)'}."
        )


def method_config(raw: dict[str, Any], method: str, registry: Registry, out_dir: str) -> RunConfig:
    """The configuration of one method's run: ``raw`` with the method's regularizers
    (and only their options), its stream mode and its run directory."""
    regularizers, joint = parse_method(method, registry)
    data = copy.deepcopy(raw)
    given = data.pop("regularizer", {}) or {}
    data = set_path(data, ["components", "regularizer"], regularizers)
    chosen = {n: given[n] for n in regularizers if n in given}
    if chosen:
        data["regularizer"] = chosen
    data = set_path(data, ["train", "stream_mode"], "joint" if joint else "sequential")
    data = set_path(data, ["train", "out_dir"], out_dir)
    config = resolve(data, registry)
    check_stream(config, registry)
    return config


@dataclass
class MethodResult:
    """One method's outcome in a comparison."""

    method: str
    record: ContinualRecord
    seconds: float
    run_dir: Path

    def row(self) -> dict[str, Any]:
        """The method's figures as plain data."""
        return {
            "method": self.method,
            **self.record.summary(),
            "seconds": round(self.seconds, 1),
            "run_dir": str(self.run_dir),
        }


class ContinualExperiment:
    """A memory model learning a registered stream with continual-learning regularizers.

    A thin layer over the registry and the trainer: the same run (directory,
    checkpoints, ``continual.json``, heatmap) as ``nma run`` on a stream::

        from nma import ContinualExperiment

        clm = ContinualExperiment(
            task="permuted-digits", memory="ntm", controller="lstm",
            regularizers=["ewc", "replay"],
            options={"task": {"num_experiences": 5}, "train": {"experience_steps": 300},
                     "regularizer": {"ewc": {"weight": 1000}}},
            out_dir="runs/ewc-replay",
        )
        record = clm.fit()            # a ContinualRecord: R, b, summary()
        print(record.summary())       # acc, bwt, fwt, forgetting

    Args:
        task: a registered stream task.
        memory, controller, addressing: registered components (addressing: the
            memory's default when ``None``).
        regularizers: registered regularizer names, applied together.
        options: configuration sections (``task``, ``memory``, ``controller``,
            ``addressing``, ``regularizer``, ``train``) as dictionaries.
        joint: train on all experiences at once instead (the upper reference).
        out_dir: the run directory (a fresh one under ``runs/`` when ``None``).
    """

    def __init__(
        self,
        task: str = "permuted-digits",
        memory: str = "ntm",
        controller: str = "lstm",
        regularizers: list[str] | tuple[str, ...] = (),
        addressing: str | None = None,
        options: dict[str, dict[str, Any]] | None = None,
        joint: bool = False,
        out_dir: str | Path | None = None,
        registry: Registry | None = None,
    ) -> None:
        self.registry = registry or get_registry()
        raw: dict[str, Any] = copy.deepcopy(options or {})
        components = {"task": task, "memory": memory, "controller": controller}
        components.update({"regularizer": list(regularizers), "addressing": addressing or ""})
        for key, value in components.items():
            raw = set_path(raw, ["components", key], value)
        raw = set_path(raw, ["train", "stream_mode"], "joint" if joint else "sequential")
        if out_dir is not None:
            raw = set_path(raw, ["train", "out_dir"], str(out_dir))
        self.config = resolve(raw, self.registry)
        check_stream(self.config, self.registry)
        self.run: Any = None

    def fit(self, console: Console | None = None, progress: bool = False) -> ContinualRecord:
        """Train on every experience in turn; return the accuracy record."""
        from nma.run import create_run
        from nma.trainer import train

        self.run = create_run(self.config, self.registry, console or Console(quiet=True))
        train(self.run, show_progress=progress)
        assert self.run.continual is not None
        return self.run.continual

    @property
    def model(self) -> Any:
        """The trained :class:`nma.model.MemoryModel` (after :meth:`fit`)."""
        if self.run is None:
            raise RuntimeError("fit() has not run yet")
        return self.run.model

    @property
    def regularizers(self) -> dict[str, Any]:
        """The run's regularizers by name (after :meth:`fit`)."""
        if self.run is None:
            raise RuntimeError("fit() has not run yet")
        return self.run.parts.regularizers


def compare_methods(
    raw: dict[str, Any],
    methods: list[str],
    out: Path,
    registry: Registry,
    console: Console,
    progress: bool = False,
) -> list[MethodResult]:
    """Train the same stream and model (same seed) with each method, each in its own
    run directory under ``out``; write the comparison table there."""
    from nma.run import create_run
    from nma.trainer import train

    given = set((raw.get("regularizer") or {}).keys())
    used = {n for m in methods for n in parse_method(m, registry)[0]}
    if given - used:
        raise UsageError(
            f"Options are given for the regularizer(s) {', '.join(sorted(given - used))}, which "
            f"no method of this comparison uses (methods: {', '.join(methods)})."
        )
    configs = {m: method_config(raw, m, registry, str(out / m)) for m in methods}
    results = []
    for method, config in configs.items():
        console.print(f"[bold]{method}[/bold]: training in {out / method}")
        run = create_run(config, registry, console)
        started = time.perf_counter()
        train(run, show_progress=progress)
        assert run.continual is not None
        results.append(
            MethodResult(method, run.continual, time.perf_counter() - started, run.run_dir)
        )
    return results


def comparison_table(results: list[MethodResult], title: str = "") -> Table:
    """The methods side by side: ACC, BWT, FWT, forgetting, time."""
    table = Table(title=title or "continual learning, methods side by side")
    for column in ("method", "ACC", "BWT", "FWT", "forgetting", "time (s)"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for result in results:
        s = result.record.summary()
        table.add_row(
            result.method,
            *(_fmt(s.get(k)) for k in ("acc", "bwt", "fwt", "forgetting")),
            f"{result.seconds:.0f}",
        )
    return table


def write_comparison(results: list[MethodResult], out: Path, header: str = "") -> list[Path]:
    """``comparison.md`` (a markdown table after ``header``) and ``comparison.json``."""
    lines = [header.rstrip(), ""] if header else []
    lines += [
        "| method | ACC | BWT | FWT | forgetting | time (s) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        s = result.record.summary()
        figures = " | ".join(_fmt(s.get(k)) for k in ("acc", "bwt", "fwt", "forgetting"))
        lines.append(f"| {result.method} | {figures} | {result.seconds:.0f} |")
    md, js = (out / name for name in COMPARISON_FILES)
    atomic_write_text(md, "\n".join(lines) + "\n")
    data = {
        "methods": [r.row() for r in results],
        "matrices": {r.method: r.record.to_dict() for r in results},
    }
    atomic_write_text(js, json.dumps(data, indent=2) + "\n")
    return [md, js]


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
