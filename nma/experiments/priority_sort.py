"""``nma experiment priority-sort``: priority sort (Graves et al. 2014, §4.5)."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="priority-sort",
    title="Priority sort: write the vectors of highest priority, highest first",
    configurations=(
        Configuration(
            name="ntm-lstm",
            options={
                "components.memory": "ntm",
                "components.controller": "lstm",
                "components.task": "priority-sort",
                "train.steps": 4000,
                "train.eval_every": 500,
            },
            quick=quick(task__width=4, task__min_inputs=4, task__max_inputs=4, task__num_outputs=3),
            targets=(
                Target("bit_errors", None, False, "no figure claimed; NTM §4.5 shows it learns"),
            ),
            provenance=(
                "benchmarks/results/priority-sort-ntm-lstm.md (50.4 bit errors of 128 after "
                "4,000 steps, falling slowly)"
            ),
        ),
    ),
)
