"""Helpers for the binary-sequence task tests: the CLI run and hand-made outputs."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import Tensor
from typer.testing import CliRunner

from nma.cli import app
from nma.task import Batch


def run_task_cli(task: str, memory: str, out: Path, options: dict[str, object]) -> dict:
    """Train ``task`` for 2 steps on a tiny ``memory`` + lstm model through the CLI;
    return ``summary.json`` after checking the exit code."""
    args = [
        "run", "--memory", memory, "--controller", "lstm", "--task", task,
        "--steps", "2", "--no-progress", "--device", "cpu", "--out", str(out),
        "--set", "memory.slots=8", "--set", "controller.hidden_size=16",
        "--set", "train.eval_every=0", "--set", "train.checkpoint_every=0",
        "--set", "train.batch_size=2",
    ]  # fmt: skip
    for key, value in options.items():
        args += ["--set", f"task.{key}={value}"]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def perfect_logits(batch: Batch) -> Tensor:
    """Logits on the right side of 0 for every target bit."""
    return (batch.targets * 2 - 1) * 5


def reference_bce(logits: Tensor, batch: Batch) -> Tensor:
    """Binary cross-entropy over the scored steps' bits, one term at a time."""
    terms = []
    for t, b in batch.mask.nonzero().tolist():
        for k in range(logits.shape[-1]):
            p = torch.sigmoid(logits[t, b, k].double())
            y = batch.targets[t, b, k].double()
            terms.append(-(y * torch.log(p) + (1 - y) * torch.log(1 - p)))
    return torch.stack(terms).mean()
