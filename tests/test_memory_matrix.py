"""Every registered memory with every first-party controller, from the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from nma.cli import app
from nma.registry import get_registry

MEMORIES = get_registry().names("memory")


@pytest.mark.parametrize("controller", ["lstm", "mlp"])
@pytest.mark.parametrize("memory", MEMORIES)
def test_memory_controller_copy_runs_from_the_cli(memory, controller, tmp_path):
    out = tmp_path / "run"
    args = [
        "run", "--memory", memory, "--controller", controller, "--task", "copy",
        "--steps", "3", "--device", "cpu", "--out", str(out), "--no-progress",
        "--set", "controller.hidden_size=16", "--set", "task.width=3",
        "--set", "task.max_length=3", "--set", "task.eval_size=4",
        "--set", "train.batch_size=2", "--set", "train.log_every=1",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 3
    losses = [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert all(loss == loss and abs(loss) < 1e6 for loss in losses)  # finite


@pytest.mark.parametrize("memory", MEMORIES)
def test_memory_trains_under_bf16_autocast(memory, tmp_path):
    out = tmp_path / "run"
    args = [
        "run", "--memory", memory, "--steps", "2", "--precision", "bf16", "--device", "cpu",
        "--out", str(out), "--no-progress", "--set", "controller.hidden_size=16",
        "--set", "task.eval_size=4", "--set", "train.batch_size=2",
    ]  # fmt: skip
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    loss = json.loads((out / "summary.json").read_text())["eval"]["loss"]
    assert 0 < loss < 10
