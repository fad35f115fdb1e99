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
                "train.steps": 6000,
                "train.eval_every": 1000,
                "task.min_rules": 0,
                "task.curriculum_steps": 3000,
            },
            quick=quick(task__max_atoms=6, task__max_rules=2, task__max_depth=1),
            targets=(Target("accuracy", 0.90, True, "the issue: ≥ 90%"),),
            provenance=(
                "untested guess: the task authors' note (benchmarks/README.md) that it learns "
                "with min_rules=0 and a curriculum (0.97 at depth 0), scaled up"
            ),
        ),
    ),
)
