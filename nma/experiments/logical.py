"""``nma experiment logical``: propositional inference with facts and Horn rules."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="logical",
    title="Logical reasoning: does a query atom follow from facts and Horn rules?",
    configurations=(
        Configuration(
            name="dnc-lstm",
            options={
                "components.memory": "dnc",
                "components.controller": "lstm",
                "components.task": "logical",
                "memory.slots": 64,
                "train.steps": 5000,
                "train.batch_size": 64,
                "train.lr": 3e-3,
                "train.eval_every": 500,
                "task.min_rules": 0,
                "task.eval_min_rules": 2,
                "task.curriculum_steps": 4000,
            },
            quick=quick(task__max_atoms=6, task__max_rules=2, task__max_depth=1),
            targets=(Target("accuracy", 0.90, True, "the issue: ≥ 90%"),),
            provenance=(
                "benchmarks/results/logical-dnc-lstm.md (accuracy 0.594 after 5,000 "
                "steps: target not reached)"
            ),
        ),
    ),
)
