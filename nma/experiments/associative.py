"""``nma experiment associative``: associative recall (Graves et al. 2014, §4.3)."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="associative",
    title="Associative recall: given an item, recall the item that followed it",
    configurations=(
        Configuration(
            name="dnc-lstm",
            options={
                "components.memory": "dnc",
                "components.controller": "lstm",
                "components.task": "associative-recall",
                "train.steps": 6000,
                "train.eval_every": 500,
                "task.curriculum_steps": 2000,
            },
            quick=quick(task__width=4, task__item_length=2, task__max_items=3),
            targets=(Target("item_accuracy", 0.95, True, "the issue: ≥ 95% of items"),),
            provenance=(
                "benchmarks/results/associative-recall-dnc-lstm.md (item accuracy 0.29 after "
                "6,000 steps, rising: target not reached)"
            ),
        ),
    ),
)
