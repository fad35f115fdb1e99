"""Tiny stream runs for the continual-learning tests (a few seconds each)."""

from __future__ import annotations

STREAM = [
    "--memory", "ntm", "--controller", "lstm", "--task", "permuted-digits",
    "--set", "memory.slots=4", "--set", "memory.width=4",
    "--set", "controller.hidden_size=8",
    "--set", "task.num_experiences=3",
    "--set", "train.experience_steps=6",
    "--set", "train.batch_size=4",
    "--set", "train.eval_every=0",
    "--set", "train.checkpoint_every=0",
    "--set", "train.log_every=3",
    "--set", "train.eval_batch_size=512",
    "--set", "train.lr=0.01",
    "--device", "cpu",
    "--no-progress",
]  # fmt: skip
"""CLI options of a three-experience permuted-digits run of 18 steps."""


def options(args: list[str]) -> list[str]:
    """The ``--set`` assignments of ``args``."""
    return [args[i + 1] for i, a in enumerate(args) if a == "--set"]
