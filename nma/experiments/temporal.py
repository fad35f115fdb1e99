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
                "train.steps": 8000,
                "train.batch_size": 64,
                "train.lr": 3e-3,
                "train.eval_every": 500,
                "task.curriculum_steps": 1000,
            },
            quick=quick(task__max_length=6, task__max_period=3, task__max_events=4),
            targets=(Target("accuracy", 0.95, True, "the issue: ≥ 95%"),),
            provenance=(
                "benchmarks/results/temporal-dnc-lstm.md (accuracy 0.947 after 8,000 "
                "steps, ordering still rising: target not reached)"
            ),
        ),
    ),
)
