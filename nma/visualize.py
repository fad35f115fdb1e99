"""Figures of what a memory did, of training curves and of continual learning.

Every method of :class:`MemoryVisualizer` returns a :class:`matplotlib.figure.Figure`
built without ``pyplot`` (no global state, nothing to close, rendered by Agg when
saved), so it works on a machine without a display. A figure of ``k`` panels is laid
out on ``columns`` columns and is ``panel_size`` inches per panel, at ``dpi``: see
:meth:`MemoryVisualizer.figure_pixels`. A recording that lacks what a figure shows
(a memory without slots has no weightings) gives a one-panel figure that says so.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor

from nma.analysis import MemoryAnalyzer
from nma.continual_record import ContinualRecord, accuracy_matrix_figure
from nma.recording import Recording

WEIGHTINGS = ("read_weights", "write_weights")
CONTENTS_ORDER = ("memory", "keys", "values", "link", "buffer")


class MemoryVisualizer:
    """Draws recordings (:class:`nma.recording.Recording`) and run metrics.

    Args:
        dpi: pixels per inch of the figures.
        panel_size: ``(width, height)`` of one panel, in inches.
        columns: panels per row at most.
        analyzer: decides what counts as usage (:meth:`MemoryAnalyzer.usage`) and
            which slots are in use.
    """

    def __init__(
        self,
        dpi: int = 100,
        panel_size: tuple[float, float] = (4.0, 3.0),
        columns: int = 3,
        analyzer: MemoryAnalyzer | None = None,
    ) -> None:
        self.dpi = dpi
        self.panel_size = panel_size
        self.columns = columns
        self.analyzer = analyzer or MemoryAnalyzer()

    # layout ---------------------------------------------------------------------------

    def grid(self, panels: int) -> tuple[int, int]:
        """``(rows, columns)`` of a figure of ``panels`` panels."""
        columns = max(1, min(panels, self.columns))
        return math.ceil(max(panels, 1) / columns), columns

    def figure_pixels(self, panels: int) -> tuple[int, int]:
        """``(width, height)`` in pixels of a figure of ``panels`` panels."""
        rows, columns = self.grid(panels)
        width, height = self.panel_size
        return round(columns * width * self.dpi), round(rows * height * self.dpi)

    def _figure(self, panels: int, title: str) -> tuple[Figure, list[Axes]]:
        rows, columns = self.grid(panels)
        width, height = self.panel_size
        fig = Figure(figsize=(columns * width, rows * height), dpi=self.dpi)
        # fixed margins in inches (a layout engine would double the drawing time)
        fig.subplots_adjust(
            left=0.6 / (columns * width),
            right=1 - 0.45 / (columns * width),
            bottom=0.5 / (rows * height),
            top=1 - 0.55 / (rows * height),
            wspace=0.4,
            hspace=0.55,
        )
        grid = fig.subplots(rows, columns, squeeze=False)
        axes = [ax for row in grid for ax in row]
        for ax in axes[panels:]:
            ax.set_axis_off()
        fig.suptitle(title, fontsize=10)
        return fig, axes[: max(panels, 1)]

    def _message(self, title: str, text: str) -> Figure:
        fig, (ax,) = self._figure(1, title)
        ax.set_axis_off()
        ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, fontsize=9)
        return fig

    def _heatmap(
        self, fig: Figure, ax: Axes, data: np.ndarray, first_row: int = 0, **style: Any
    ) -> None:
        """``data`` ``(rows, columns)`` as an image whose rows are numbered from
        ``first_row`` (1 for steps, 0 for slots)."""
        rows, columns = data.shape
        extent = (-0.5, columns - 0.5, first_row + rows - 0.5, first_row - 0.5)
        image = ax.imshow(data, aspect="auto", interpolation="nearest", extent=extent, **style)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02)

    # recordings -----------------------------------------------------------------------

    def plot_memory_usage(self, recording: Recording, sequence: int = 0) -> Figure:
        """Usage over time: a step × slot heatmap of every slot's usage, and the share
        of slots in use (usage above the analyzer's threshold) and the mean usage per
        step. Memories without a usage of their own show the cumulative write weight
        each slot has received (:meth:`MemoryAnalyzer.usage`)."""
        title = f"{recording.memory}: memory usage (sequence {sequence})"
        found = self.analyzer.usage(recording)
        if found is None:
            return self._message(title, f"{recording.memory} records no usage or write weights.")
        usage, source = found
        usage = usage[:, sequence].numpy()  # (T, N)
        fig, (heat, line) = self._figure(2, title)
        self._heatmap(fig, heat, usage, 1, vmin=0.0, vmax=max(1.0, float(usage.max())))
        heat.set(xlabel="slot", ylabel="step", title=source)
        steps = np.arange(1, usage.shape[0] + 1)
        line.plot(steps, (usage > self.analyzer.threshold).mean(axis=1), label="share in use")
        line.plot(steps, usage.mean(axis=1), label="mean usage")
        line.set(xlabel="step", ylim=(-0.02, max(1.02, float(usage.mean(axis=1).max()) * 1.05)))
        line.legend(fontsize=8)
        return fig

    def plot_attention_patterns(self, recording: Recording, sequence: int = 0) -> Figure:
        """Read and write weightings as step × slot heatmaps, one panel per head (the
        read heads first)."""
        title = f"{recording.memory}: attention (sequence {sequence})"
        panels: list[tuple[str, np.ndarray]] = []
        for name in WEIGHTINGS:
            weights = recording.series.get(name)
            if weights is None or weights.dim() != 4 or not weights.is_floating_point():
                continue
            kind = name.split("_")[0]
            for head in range(weights.shape[2]):
                panels.append((f"{kind} head {head}", weights[:, sequence, head].numpy()))
        if not panels:
            return self._message(title, f"{recording.memory} records no read or write weights.")
        fig, axes = self._figure(len(panels), title)
        for ax, (label, data) in zip(axes, panels, strict=True):
            signed = bool((data < 0).any())
            bound = max(float(np.abs(data).max()), 1e-12)
            style = {"cmap": "RdBu_r", "vmin": -bound, "vmax": bound} if signed else {"vmin": 0}
            self._heatmap(fig, ax, data, 1, **style)
            ax.set(xlabel="slot", ylabel="step", title=label)
        return fig

    def plot_memory_contents(
        self, recording: Recording, steps: Sequence[int] | None = None, sequence: int = 0
    ) -> Figure:
        """The stored contents (``memory``, else ``keys``, ...) at chosen steps, a slot ×
        width heatmap per step.

        Args:
            steps: steps (from 1) to show; each is drawn at the nearest snapshot taken
                (the panel says which). By default the first, middle and last snapshots.
        """
        title = f"{recording.memory}: memory contents (sequence {sequence})"
        name = next((n for n in CONTENTS_ORDER if n in recording.contents), None)
        name = name or next(iter(sorted(recording.contents)), None)
        taken = recording.content_steps.tolist()
        if name is None or not taken:
            return self._message(title, f"{recording.memory} records no memory contents.")
        if steps is None:
            picks = sorted({0, len(taken) // 2, len(taken) - 1})
        else:
            picks = sorted({min(range(len(taken)), key=lambda i: abs(taken[i] - s)) for s in steps})
        data = recording.contents[name][:, sequence]
        data = data.reshape(data.shape[0], data.shape[1] if data.dim() > 1 else 1, -1).numpy()
        bound = max(float(np.abs(data[picks]).max()), 1e-12)
        fig, axes = self._figure(len(picks), title)
        for ax, index in zip(axes, picks, strict=True):
            self._heatmap(fig, ax, data[index], cmap="RdBu_r", vmin=-bound, vmax=bound)
            ax.set(xlabel="width", ylabel="slot", title=f"{name} after step {taken[index]}")
        return fig

    def plot_memory_signals(self, recording: Recording, sequence: int = 0) -> Figure:
        """Every other per-step quantity the memory exposes (losses, gates, routing,
        norms, ...): one panel per name, a line per component (up to 8)."""
        title = f"{recording.memory}: other recorded signals (sequence {sequence})"
        picked: list[tuple[str, np.ndarray]] = []
        for name, value in sorted(recording.series.items()):
            if name in (*WEIGHTINGS, "usage") or not value.is_floating_point():
                continue
            per_step = value[:, sequence].reshape(value.shape[0], -1)
            if 1 <= per_step.shape[1] <= 8:
                picked.append((name, per_step.numpy()))
        if not picked:
            return self._message(title, f"{recording.memory} records no other per-step signals.")
        fig, axes = self._figure(len(picked), title)
        for ax, (name, values) in zip(axes, picked, strict=True):
            steps = np.arange(1, values.shape[0] + 1)
            for column in range(values.shape[1]):
                label = str(column) if values.shape[1] > 1 else None
                ax.plot(steps, values[:, column], label=label)
            if values.shape[1] > 1:
                ax.legend(fontsize=7, ncol=2)
            ax.set(xlabel="step", title=name)
        return fig

    # runs -----------------------------------------------------------------------------

    def plot_training_curves(self, records: Sequence[dict[str, Any]], title: str = "") -> Figure:
        """The loss and every metric of a run's ``metrics.jsonl`` records against the
        step: training thin, held-out evaluation with markers. One panel per name."""
        return self.plot_comparison({"": list(records)}, title or "training curves")

    def plot_comparison(
        self, runs: dict[str, Sequence[dict[str, Any]]], title: str = "comparison"
    ) -> Figure:
        """Several runs' curves on one figure: a panel per metric (the loss first, then
        every metric any run logged), a colour per run, training thin and evaluation
        with markers. ``runs`` maps a label to the run's ``metrics.jsonl`` records."""
        names = _metric_names(runs.values())
        if not names:
            return self._message(title, "No training or evaluation metrics were logged.")
        fig, axes = self._figure(len(names), title)
        colours = [f"C{i % 10}" for i in range(len(runs))]
        for ax, name in zip(axes, names, strict=True):
            for colour, (label, records) in zip(colours, runs.items(), strict=True):
                for split, style in (("train", {"lw": 0.8, "alpha": 0.6}), ("eval", {})):
                    points = _points(records, split, name)
                    if not points:
                        continue
                    tag = " ".join(p for p in (label, split) if p)
                    marker = "o" if split == "eval" else None
                    steps, values = zip(*points, strict=True)
                    ax.plot(steps, values, color=colour, marker=marker, ms=3, label=tag, **style)
            ax.set(xlabel="step", title=name)
            ax.legend(fontsize=7)
        return fig

    def plot_accuracy_matrix(self, record: ContinualRecord, title: str = "") -> Figure:
        """The continual-learning accuracy matrix ``R`` as a heatmap (see
        :func:`nma.continual_record.accuracy_matrix_figure` for its size)."""
        return accuracy_matrix_figure(record, title, dpi=self.dpi)

    def save(self, fig: Figure, path: str | Path) -> Path:
        """Write ``fig`` as a PNG at the figure's own size and dpi."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", dpi=fig.dpi)
        return path


def _metric_names(runs: Any) -> list[str]:
    """``loss`` first, then every other numeric metric, in the order first seen."""
    seen: dict[str, None] = {}
    for records in runs:
        for record in records:
            if record.get("split") not in ("train", "eval"):
                continue
            for key, value in record.items():
                if key not in ("step", "split") and _number(value) is not None:
                    seen.setdefault(key, None)
    names = list(seen)
    return (["loss"] if "loss" in seen else []) + [n for n in names if n != "loss"]


def _points(records: Sequence[dict[str, Any]], split: str, name: str) -> list[tuple[int, float]]:
    out = []
    for record in records:
        value = _number(record.get(name))
        if record.get("split") == split and value is not None:
            out.append((int(record["step"]), value))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | Tensor):
        return None
    value = float(value)
    return value if math.isfinite(value) else None
