"""``nma experiment babi``: the 20 bAbI tasks of the 1k set, trained jointly."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="babi",
    title="bAbI 1k: answer questions about short stories, the 20 tasks jointly",
    configurations=(
        Configuration(
            name="kv-mlp-joint",
            options={
                "components.memory": "kv",
                "components.controller": "mlp",
                "components.task": "babi",
                "memory.hops": 3,
                "memory.read_heads": 1,
                "controller.hidden_size": 64,
                "train.lr": 3e-3,
                "train.batch_size": 32,
                "train.steps": 10000,
                "train.eval_every": 2000,
            },
            quick=quick(task__tasks=[1], task__max_sentences=10, memory__key_size=6),
            targets=(
                Target("error", 0.126, False, "MemN2N, mean error on bAbI 1k"),
                Target("failed_tasks", 3, False, "MemN2N: 3 of 20 tasks above 5% error"),
            ),
            provenance=(
                "benchmarks/results/babi-kv-mlp-joint.md (mean error 40.5%, 19 tasks "
                "failed: target not reached)"
            ),
        ),
    ),
)
