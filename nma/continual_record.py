"""The accuracy matrix of a stream run: kept in checkpoints, written as
``continual.json``, printed as a Rich table and drawn as a heatmap."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table

from nma.checkpoint import atomic_write_text
from nma.continual_metrics import average_accuracy, summarize

if TYPE_CHECKING:
    from matplotlib.figure import Figure

RECORD_FILE = "continual.json"
FIGURE_FILE = "accuracy-matrix.png"


@dataclass
class ContinualRecord:
    """What a stream run has measured so far.

    Attributes:
        names: the experiences' names.
        metric: the task metric that fills the matrix (``StreamTask.experience_metric``).
        joint: trained on all experiences at once (one row, after the whole run).
        initial: ``b``, the accuracy on each experience before training.
        rows: ``R``: row ``i`` is the accuracy on every experience after training on
            experiences ``0..i`` (one row in joint training).
    """

    names: list[str]
    metric: str = "accuracy"
    joint: bool = False
    initial: list[float] | None = None
    rows: list[list[float]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Every experience (or, in joint training, the whole run) is trained."""
        return len(self.rows) == (1 if self.joint else len(self.names))

    def summary(self) -> dict[str, float]:
        """ACC, BWT, FWT and forgetting over the experiences trained so far; joint
        training has only ACC (its one row)."""
        if not self.rows:
            return {}
        if self.joint:
            return {"acc": sum(self.rows[-1]) / len(self.rows[-1])}
        k = len(self.rows)
        square = [row[:k] for row in self.rows]
        if k < len(self.names):
            return {"acc": average_accuracy(square)}
        return summarize(square, self.initial)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON), as saved in checkpoints and ``continual.json``."""
        return {
            "experiences": self.names,
            "metric": self.metric,
            "joint": self.joint,
            "initial_accuracy": self.initial,
            "accuracy_matrix": self.rows,
            "summary": self.summary(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ContinualRecord:
        """The record :meth:`to_dict` wrote."""
        return cls(
            names=list(data["experiences"]),
            metric=data.get("metric", "accuracy"),
            joint=bool(data.get("joint", False)),
            initial=data.get("initial_accuracy"),
            rows=[list(row) for row in data.get("accuracy_matrix", [])],
        )

    def write(self, run_dir: Path) -> Path:
        """Write ``continual.json`` into ``run_dir``."""
        path = run_dir / RECORD_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def table(self) -> Table:
        """R as a Rich table (rows: after training experience i), with b and the metrics."""
        title = f"{self.metric} on each experience (columns) after training (rows)"
        table = Table(title=title)
        table.add_column("after")
        for name in self.names:
            table.add_column(name, justify="right")
        if self.initial is not None:
            table.add_row("untrained (b)", *(f"{v:.3f}" for v in self.initial))
        for i, row in enumerate(self.rows):
            label = "all (joint)" if self.joint else self.names[i]
            table.add_row(label, *(f"{v:.3f}" for v in row))
        return table

    def metrics_table(self) -> Table:
        """ACC, BWT, FWT, forgetting as a one-row Rich table."""
        summary = self.summary()
        table = Table(title="continual-learning metrics")
        for name in ("ACC", "BWT", "FWT", "forgetting"):
            table.add_column(name, justify="right")
        table.add_row(*(_fmt(summary.get(k)) for k in ("acc", "bwt", "fwt", "forgetting")))
        return table

    def print(self, console: Console) -> None:
        """Print the matrix and the metrics."""
        console.print(self.table())
        console.print(self.metrics_table())


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def accuracy_matrix_figure(record: ContinualRecord, title: str = "", dpi: int = 100) -> Figure:
    """R as a heatmap (rows: after training experience i; columns: experience j), each
    cell labelled with its value. The figure is ``1.2 + 0.9 E`` by ``1.0 + 0.6 max(rows,
    1)`` inches for ``E`` experiences, at ``dpi``."""
    from matplotlib.figure import Figure

    rows = record.rows
    labels = ["all (joint)"] if record.joint else record.names[: len(rows)]
    fig = Figure(figsize=(1.2 + 0.9 * len(record.names), 1.0 + 0.6 * max(len(rows), 1)), dpi=dpi)
    ax = fig.add_subplot()
    image = ax.imshow(rows or [[0.0] * len(record.names)], vmin=0.0, vmax=1.0, cmap="viridis")
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            colour = "black" if value > 0.6 else "white"
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color=colour, fontsize=8)
    ax.set_xticks(range(len(record.names)), record.names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel(f"{record.metric} on experience")
    ax.set_ylabel("after training")
    ax.set_title(title or "accuracy matrix R", fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_accuracy_matrix(record: ContinualRecord, path: Path, title: str = "") -> Path:
    """Draw :func:`accuracy_matrix_figure` and save it to ``path`` (PNG)."""
    fig = accuracy_matrix_figure(record, title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path
