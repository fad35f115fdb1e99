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
                "memory.slots": 32,
                "memory.width": 32,
                "controller.hidden_size": 128,
                "train.steps": 50000,
                "train.batch_size": 64,
                "train.lr": 3e-3,
                "train.eval_every": 2500,
                "task.min_rules": 0,
                "task.eval_min_rules": 2,
                "task.curriculum_steps": 3000,
                "task.encoding": "clauses",
                "task.think_steps": 4,
            },
            quick=quick(task__max_atoms=6, task__max_rules=2, task__max_depth=1),
            targets=(Target("accuracy", 0.90, True, "the issue: ≥ 90%"),),
            provenance=(
                "benchmarks/results/logical-dnc-lstm-clauses-50k-cosine.md (accuracy "
                "0.904 after 50,000 steps with one clause a step and 4 think steps: "
                "target reached; 0.861 after 20,000, logical-dnc-lstm-clauses.md; 0.594 "
                "with the token encoding)"
            ),
        ),
    ),
)
