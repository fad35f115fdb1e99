"""``nma experiment copy``: the NTM copy task (Graves et al. 2014, §4.1), at the
training lengths and at lengths up to 100."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

NEAR_PERFECT = "near-perfect: under one bit error per sequence (NTM §4.1)"

EXPERIMENT = Experiment(
    name="copy",
    title="Copy: store a sequence of binary vectors and write it back",
    configurations=(
        Configuration(
            name="ntm-lstm",
            options={
                "components.memory": "ntm",
                "components.controller": "lstm",
                "components.task": "copy",
                "train.steps": 3000,
            },
            quick=quick(task__width=4, task__max_length=4),
            targets=(Target("bit_errors", 1.0, False, NEAR_PERFECT),),
            provenance="benchmarks/results/copy-ntm-lstm.md (seed 0: 0.004 bit errors)",
        ),
        Configuration(
            name="ntm-lstm-length-100",
            options={
                "components.memory": "ntm",
                "components.controller": "lstm",
                "components.task": "copy",
                "train.steps": 6000,
                "train.eval_every": 1000,
                "task.max_length": 20,
                "task.curriculum_steps": 2000,
                "task.eval_min_length": 20,
                "task.eval_max_length": 100,
                "task.eval_size": 64,
            },
            quick=quick(
                task__width=4,
                task__max_length=4,
                task__curriculum_steps=10,
                task__eval_min_length=4,
                task__eval_max_length=8,
            ),
            targets=(Target("bit_errors", 1.0, False, NEAR_PERFECT + ", lengths 20-100"),),
            provenance=(
                "benchmarks/results/copy-generalisation-ntm-lstm.md (204 bit errors after "
                "6,000 steps: target not reached)"
            ),
        ),
    ),
)
