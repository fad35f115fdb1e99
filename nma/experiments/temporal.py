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
                "train.steps": 6000,
                "train.eval_every": 1000,
                "task.curriculum_steps": 2000,
            },
            quick=quick(task__max_length=6, task__max_period=3, task__max_events=4),
            targets=(Target("accuracy", 0.95, True, "the issue: ≥ 95%"),),
            provenance="untested guess (sanity run: 0.30 accuracy after 400 steps)",
        ),
    ),
)
