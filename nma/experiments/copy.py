"""``nma experiment copy``: the NTM copy task (Graves et al. 2014, §4.1), at the
training lengths and at lengths up to 100.

The length-100 configuration trains on lengths 1-20 drawn uniformly from the first
step. With a curriculum that starts from short sequences (which the LSTM controller
can probably copy in its own state) the model stayed far from the memory algorithm:
222 bit errors at lengths 20-100 after 2,000 steps at a constant 1e-3, against 0.6
without it (benchmarks/README.md). Gradients are clipped at norm 1: at the default
norm 10 a converged model lost what it had learnt (at a constant 1e-3 the error came
back from 0.06 to 44 bit errors; with the cosine schedule over 6,000 steps it fell to
chance at step ~1,275; over 3,000 steps it stayed stable but ended at 1.78,
results/copy-generalisation-ntm-lstm-clip10.md).
"""

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
                "train.steps": 5000,
                "train.grad_clip": 1.0,
                "train.eval_every": 500,
                "task.max_length": 20,
                "task.eval_min_length": 20,
                "task.eval_max_length": 100,
            },
            quick=quick(
                task__width=4,
                task__max_length=4,
                task__eval_min_length=4,
                task__eval_max_length=8,
            ),
            targets=(Target("bit_errors", 1.0, False, NEAR_PERFECT + ", lengths 20-100"),),
            provenance=(
                "benchmarks/results/copy-generalisation-ntm-lstm.md (0 bit errors on 256 "
                "sequences of length 20-100 after 5,000 steps, 0 from step 3,000: reached)"
            ),
        ),
    ),
)
