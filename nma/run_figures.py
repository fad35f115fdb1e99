"""A run's figures and analysis (``nma plot``, ``nma run --plot``) and the comparison
of several runs (``nma compare``).

What a run directory gains::

    recording.safetensors   the memory recorded over held-out sequences (nma.recording)
    analysis.json           MemoryAnalyzer.summarize of that recording, and the step
    figures/*.png           training curves, memory usage, attention patterns, memory
                            contents, other signals, and the accuracy matrix of a stream
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nma.checkpoint import atomic_write_text, list_checkpoints
from nma.config import load_toml
from nma.continual_record import RECORD_FILE, ContinualRecord
from nma.errors import NmaError, UsageError
from nma.metrics_log import MetricsLog
from nma.recording import Recorder, Recording
from nma.registry import Registry
from nma.run import RunContext, resume_run
from nma.seeding import EVAL_SEED, generator
from nma.visualize import MemoryVisualizer

FIGURES_DIR = "figures"
RECORDING_FILE = "recording.safetensors"
ANALYSIS_FILE = "analysis.json"


def record_run(run: RunContext, sequences: int = 4) -> Recording:
    """Record the run's memory over its first ``sequences`` held-out sequences (the
    same ones every evaluation starts with)."""
    task = run.parts.task
    batches = task.batches("eval", sequences, generator(EVAL_SEED, "eval-data"))
    batch = next(iter(batches)).to(run.device)
    return Recorder(sequences=sequences).record(
        run.model, batch.inputs, label=run.config.components.memory
    )


def write_run_figures(
    run: RunContext, sequences: int = 4, visualizer: MemoryVisualizer | None = None
) -> list[Path]:
    """Record the trained run and write its recording, analysis and figures into its
    directory; returns the files written."""
    visualizer = visualizer or MemoryVisualizer()
    recording = record_run(run, sequences)
    folder = run.run_dir / FIGURES_DIR
    written = [recording.save(run.run_dir / RECORDING_FILE)]
    analysis = {"step": run.step, **visualizer.analyzer.summarize(recording)}
    atomic_write_text(run.run_dir / ANALYSIS_FILE, json.dumps(analysis, indent=2) + "\n")
    written.append(run.run_dir / ANALYSIS_FILE)
    c = run.config.components
    title = f"{c.task}: {c.memory} + {c.controller}, step {run.step}"
    figures = {
        "training-curves": visualizer.plot_training_curves(run.metrics.read(), title),
        "memory-usage": visualizer.plot_memory_usage(recording),
        "attention-patterns": visualizer.plot_attention_patterns(recording),
        "memory-contents": visualizer.plot_memory_contents(recording),
        "memory-signals": visualizer.plot_memory_signals(recording),
    }
    record = run.continual or _continual_record(run.run_dir)
    if record is not None and record.rows:
        figures["accuracy-matrix"] = visualizer.plot_accuracy_matrix(record, title)
    for name, fig in figures.items():
        written.append(visualizer.save(fig, folder / f"{name}.png"))
    return written


def plot_run_dir(
    run_dir: Path, registry: Registry, console: Console, sequences: int = 4
) -> list[Path]:
    """``nma plot``: load a finished run (its configuration and last checkpoint) and
    write its figures. Bad input is a :class:`nma.UsageError`."""
    check_run_dir(run_dir)
    if not list_checkpoints(run_dir / "checkpoints"):
        raise UsageError(
            f"The run {str(run_dir)!r} has no checkpoint yet, so there is no trained model "
            f"to record. Train it first (nma run --resume {run_dir})."
        )
    run = resume_run(run_dir, registry, console, {}, rewind=False)
    return draw_or_explain(run, sequences)


def draw_or_explain(run: RunContext, sequences: int = 4) -> list[Path]:
    """:func:`write_run_figures`, with any failure turned into a one-paragraph error."""
    try:
        return write_run_figures(run, sequences)
    except NmaError:
        raise
    except Exception as exc:
        raise NmaError(
            f"Drawing the figures of {str(run.run_dir)!r} failed ({type(exc).__name__}: "
            f"{exc}). The run itself is intact; rerun with NMA_DEBUG=1 for the traceback."
        ) from exc


def check_run_dir(run_dir: Path) -> None:
    """A :class:`nma.UsageError` unless ``run_dir`` is a run directory."""
    if not run_dir.exists():
        raise UsageError(f"The run directory {str(run_dir)!r} does not exist.")
    if not run_dir.is_dir():
        raise UsageError(f"{str(run_dir)!r} is a file, not a run directory.")
    if not (run_dir / "config.toml").is_file():
        raise UsageError(
            f"{str(run_dir)!r} is not a run directory: it has no config.toml (nma run "
            f"writes one into every run directory)."
        )


def _continual_record(run_dir: Path) -> ContinualRecord | None:
    path = run_dir / RECORD_FILE
    if not path.is_file():
        return None
    try:
        return ContinualRecord.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        return None


@dataclass
class RunSummary:
    """What ``nma compare`` shows of one run.

    Attributes:
        label: the run directory's name.
        components: ``memory + controller`` and the task.
        records: its ``metrics.jsonl`` records.
        step: the last step logged.
        final: the final held-out metrics (``summary.json``, else the last evaluation).
        finished: whether ``summary.json`` exists.
    """

    label: str
    components: str
    records: list[dict[str, Any]]
    step: int
    final: dict[str, float]
    finished: bool


def load_summary(run_dir: Path) -> RunSummary:
    """Read a run's metrics and final evaluation, without building its model."""
    check_run_dir(run_dir)
    records = MetricsLog(run_dir / "metrics.jsonl").read()
    final: dict[str, Any] = {}
    summary_path = run_dir / "summary.json"
    finished = summary_path.is_file()
    if finished:
        try:
            final = dict(json.loads(summary_path.read_text(encoding="utf-8")).get("eval", {}))
        except (ValueError, AttributeError):
            raise UsageError(f"The summary {str(summary_path)!r} is corrupt.") from None
    else:
        evals = [r for r in records if r.get("split") == "eval"]
        last = evals[-1] if evals else {}
        final = {k: v for k, v in last.items() if k not in ("step", "split")}
    try:
        components = load_toml(run_dir / "config.toml").get("components", {})
    except NmaError:
        components = {}
    described = (
        f"{components.get('memory', '?')} + {components.get('controller', '?')}, "
        f"{components.get('task', '?')}"
    )
    step = max((int(r.get("step", 0)) for r in records), default=0)
    numbers = {k: float(v) for k, v in final.items() if isinstance(v, int | float)}
    return RunSummary(run_dir.name or str(run_dir), described, records, step, numbers, finished)


def comparison_table(runs: list[RunSummary]) -> Table:
    """The runs' final held-out metrics side by side, one row per run."""
    names: dict[str, None] = {}
    for run in runs:
        names.update(dict.fromkeys(run.final))
    table = Table(title="final held-out metrics")
    for column in ("run", "components", "step"):
        table.add_column(column)
    for name in names:
        table.add_column(name, justify="right")
    for run in runs:
        step = str(run.step) + ("" if run.finished else " (unfinished)")
        cells = [f"{run.final[n]:.4g}" if n in run.final else "–" for n in names]
        table.add_row(run.label, run.components, step, *cells)
    return table


def compare_runs(
    run_dirs: list[Path], output: Path, visualizer: MemoryVisualizer | None = None
) -> tuple[Table, Path]:
    """``nma compare``: every run's curves on one figure (written to ``output``) and
    the table of their final metrics."""
    if not run_dirs:
        raise UsageError("nma compare needs at least one run directory.")
    visualizer = visualizer or MemoryVisualizer()
    runs = [load_summary(path) for path in run_dirs]
    labels = _unique([run.label for run in runs])
    fig = visualizer.plot_comparison(
        {label: run.records for label, run in zip(labels, runs, strict=True)},
        f"{len(runs)} runs",
    )
    for run, label in zip(runs, labels, strict=True):
        run.label = label
    return comparison_table(runs), visualizer.save(fig, output)


def _unique(labels: list[str]) -> list[str]:
    """Labels made distinct by a suffix where two runs share a directory name."""
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label} ({seen[label]})")
    return out
