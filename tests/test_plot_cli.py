"""``nma run --plot``, ``nma plot`` and ``nma compare`` end to end, and their bad input."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from nma.cli import main
from nma.recording import Recording
from nma.visualize import MemoryVisualizer
from tests.figures_helpers import assert_png
from tests.helpers import TINY, run_nma

FIGURES = ["training-curves", "memory-usage", "attention-patterns", "memory-contents"]
RUN = ["run", "--memory", "dnc", *TINY, "--steps", "10"]


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The ``nma`` entry point in this process (bad input fails before any work)."""
    old = sys.argv
    sys.argv = ["nma", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same tiny run twice: with ``--plot``, and without."""
    root = tmp_path_factory.mktemp("plots")
    plotted, plain = root / "plotted", root / "plain"
    result = run_nma(*RUN, "--plot", "--out", str(plotted))
    assert result.code == 0, result.output
    assert "figures/attention-patterns.png" in result.stdout
    result = run_nma(*RUN, "--out", str(plain))
    assert result.code == 0, result.output
    return plotted, plain


def test_run_plot_writes_the_figures_and_leaves_training_unchanged(runs) -> None:
    plotted, plain = runs
    visualizer = MemoryVisualizer()
    for name in FIGURES:
        assert_png(plotted / "figures" / f"{name}.png")
    # dnc: 2 read heads and 1 write head; usage and its share in use; 3 snapshots
    assert_png(plotted / "figures" / "attention-patterns.png", visualizer.figure_pixels(3))
    assert_png(plotted / "figures" / "memory-usage.png", visualizer.figure_pixels(2))
    assert_png(plotted / "figures" / "memory-contents.png", visualizer.figure_pixels(3))
    recording = Recording.load(plotted / "recording.safetensors")
    assert recording.memory == "dnc" and recording.sequences == 4
    assert {"read_weights", "write_weights", "usage"} <= set(recording.series)
    analysis = json.loads((plotted / "analysis.json").read_text())
    assert analysis["step"] == 10 and 0 <= analysis["utilization"] <= 1
    # the same training, bit for bit, with and without the figures
    assert not (plain / "figures").exists()
    assert (plotted / "metrics.jsonl").read_text() == (plain / "metrics.jsonl").read_text()
    name = "checkpoints/step-00000010.safetensors"
    ours, theirs = load_file(plotted / name), load_file(plain / name)
    assert ours.keys() == theirs.keys()
    assert all(ours[k].equal(theirs[k]) for k in ours)


def test_plot_draws_a_finished_run(runs, capsys) -> None:
    plotted, plain = runs
    code, output = call(capsys, "plot", str(plain))
    assert code == 0 and "figures/memory-usage.png" in output, output
    for name in FIGURES:
        assert_png(plain / "figures" / f"{name}.png")
    ours = Recording.load(plotted / "recording.safetensors")
    theirs = Recording.load(plain / "recording.safetensors")
    assert all(ours.series[k].equal(theirs.series[k]) for k in ours.series)


def test_compare_draws_the_runs_and_tables_their_final_metrics(runs, tmp_path: Path) -> None:
    plotted, plain = runs
    out = tmp_path / "both.png"
    result = run_nma("compare", str(plotted), str(plain), "--out", str(out))
    assert result.code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "dnc + lstm, copy" in line]
    assert len(rows) == 2 and "plotted" in rows[0] and "plain" in rows[1]
    final = json.loads((plain / "summary.json").read_text())["eval"]
    assert f"{final['loss']:.4g}" in rows[1]
    assert_png(out, MemoryVisualizer().figure_pixels(3))  # loss, bit_errors, sequence_accuracy


def test_bad_input_is_one_paragraph(runs, tmp_path: Path, capsys) -> None:
    plotted, _ = runs
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(plotted / "config.toml", unfinished / "config.toml")
    broken = tmp_path / "broken"
    shutil.copytree(plotted, broken)
    (broken / "checkpoints" / "step-00000010.safetensors").write_bytes(b"\0garbage")
    for args, fragment in [
        (["plot", str(tmp_path / "nowhere")], "does not exist"),
        (["plot", str(tmp_path / "file.txt")], "is a file, not a run directory"),
        (["plot", str(tmp_path / "empty")], "is not a run directory: it has no config.toml"),
        (["plot", str(unfinished)], "has no checkpoint yet"),
        (["plot", str(broken)], "is corrupt or not a safetensors file"),
        (["compare", str(plotted), str(tmp_path / "nowhere")], "does not exist"),
    ]:
        code, output = call(capsys, *args)
        assert code == 2, (args, output)
        assert fragment in output and "Traceback" not in output, output
