"""``nma experiment temporal``: sequence completion and event ordering."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="temporal",
    title="Temporal reasoning: continue a sequence made by a hidden rule, order events",
    configurations=(
        Configuration(
            name="dnc-lstm",
            options={
                "components.memory": "dnc",
                "components.controller": "lstm",
                "components.task": "temporal",
                "memory.slots": 32,
                "train.steps": 12000,
                "train.batch_size": 64,
                "train.lr": 3e-3,
                "train.eval_every": 1000,
                "task.curriculum_steps": 1000,
            },
            quick=quick(task__max_length=6, task__max_period=3, task__max_events=4),
            targets=(Target("accuracy", 0.95, True, "the issue: ≥ 95%"),),
            provenance=(
                "benchmarks/results/temporal-dnc-lstm-12k.md (accuracy 0.977 after "
                "12,000 steps: target reached)"
            ),
        ),
    ),
)
