"""Every figure of MemoryVisualizer, for every registered memory, as a checked PNG."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nma.continual_record import ContinualRecord
from nma.recording import Recorder, Recording
from nma.visualize import MemoryVisualizer
from tests.api_helpers import memory_names
from tests.figures_helpers import assert_png
from tests.test_recording import tiny_model

# small figures render faster; the commands' tests check the default size
visualizer = MemoryVisualizer(dpi=40, panel_size=(3.0, 2.5), columns=3)


def record(memory: str) -> Recording:
    inputs = torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(0))
    return Recorder(sequences=2, snapshots=4).record(tiny_model(memory), inputs, label=memory)


def heads(recording: Recording) -> int:
    return sum(
        recording.series[n].shape[2]
        for n in ("read_weights", "write_weights")
        if n in recording.series and recording.series[n].is_floating_point()
    )


@pytest.mark.parametrize("memory", memory_names())
def test_every_memory_figure_renders(memory: str, tmp_path: Path) -> None:
    recording = record(memory)
    has_usage = visualizer.analyzer.usage(recording) is not None
    expected_panels = {
        "usage": 2 if has_usage else 1,
        "attention": heads(recording) or 1,
        "contents": 3 if recording.contents else 1,  # first, middle and last snapshots
        "signals": None,
    }
    figures = {
        "usage": visualizer.plot_memory_usage(recording, sequence=1),
        "attention": visualizer.plot_attention_patterns(recording),
        "contents": visualizer.plot_memory_contents(recording),
        "signals": visualizer.plot_memory_signals(recording),
    }
    for name, fig in figures.items():
        path = visualizer.save(fig, tmp_path / f"{name}.png")
        panels = expected_panels[name]
        size = visualizer.figure_pixels(panels) if panels else None
        assert_png(path, size)


def test_contents_at_chosen_steps_use_the_nearest_snapshot(tmp_path: Path) -> None:
    recording = record("ntm")
    assert recording.content_steps.tolist() == [1, 3, 4, 6]
    fig = visualizer.plot_memory_contents(recording, steps=[2, 6])
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["memory after step 1", "memory after step 6"]
    assert_png(visualizer.save(fig, tmp_path / "c.png"), visualizer.figure_pixels(2))


def test_a_memory_without_slots_gets_figures_that_say_so() -> None:
    recording = record("neural")
    fig = visualizer.plot_attention_patterns(recording)
    assert "records no read or write weights" in fig.axes[0].texts[0].get_text()
    signals = visualizer.plot_memory_signals(recording)
    assert {ax.get_title() for ax in signals.axes} >= {"loss", "surprise", "gates"}


def test_layout_grid() -> None:
    assert visualizer.grid(1) == (1, 1) and visualizer.grid(3) == (1, 3)
    assert visualizer.grid(7) == (3, 3)
    assert visualizer.figure_pixels(4) == (360, 200)


RECORDS = [
    {"step": 5, "split": "train", "loss": 0.9, "accuracy": 0.2},
    {"step": 10, "split": "train", "loss": 0.5, "accuracy": 0.6},
    {"step": 10, "split": "eval", "loss": 0.6, "accuracy": 0.5, "note": "nan"},
    {"step": 10, "split": "continual", "experience": 0, "accuracy": [0.5, 0.1]},
]


def test_training_curves_and_comparison(tmp_path: Path) -> None:
    fig = visualizer.plot_training_curves(RECORDS)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "accuracy"]
    assert_png(visualizer.save(fig, tmp_path / "curves.png"), visualizer.figure_pixels(2))
    other = [{**r, "loss": r["loss"] / 2} for r in RECORDS[:3]]
    fig = visualizer.plot_comparison({"a": RECORDS, "b": other})
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["a train", "a eval", "b train", "b eval"]
    assert_png(visualizer.save(fig, tmp_path / "cmp.png"), visualizer.figure_pixels(2))


def test_accuracy_matrix(tmp_path: Path) -> None:
    record_ = ContinualRecord(names=["a", "b", "c"], rows=[[0.9, 0.1, 0.1], [0.5, 0.8, 0.2]])
    path = visualizer.save(visualizer.plot_accuracy_matrix(record_), tmp_path / "m.png")
    assert_png(path, (round((1.2 + 0.9 * 3) * 40), round((1.0 + 0.6 * 2) * 40)))
