"""``nma experiment babi``: the 20 bAbI tasks of the 1k set, trained jointly."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="babi",
    title="bAbI 1k: answer questions about short stories, the 20 tasks jointly",
    configurations=(
        Configuration(
            name="memn2n-joint",
            options={
                "components.memory": "kv",
                "components.controller": "mlp",
                "components.task": "babi",
                "controller.layers": 0,
                "memory.slots": 50,
                "memory.width": 50,
                "memory.key_size": 50,
                "memory.read_heads": 1,
                "memory.hops": 3,
                "memory.hop_embeddings": "adjacent",
                "memory.tie_query": True,
                "memory.read_before_write": True,
                "memory.read_query": True,
                "memory.controller_reads": False,
                "memory.linear_start_steps": 5000,
                "memory.hop_gates": True,
                "task.sentence_encoding": "position",
                "task.temporal": True,
                "task.time_noise": 0.1,
                "task.answer_at": "question",
                "train.lr": 5e-3,
                "train.grad_clip": 40.0,
                "train.batch_size": 32,
                "train.steps": 40000,
                "train.eval_every": 4000,
            },
            quick=quick(
                task__tasks=[1],
                task__max_sentences=10,
                memory__key_size=6,
                memory__linear_start_steps=5,
            ),
            targets=(
                Target("error", 0.126, False, "MemN2N, mean error on bAbI 1k"),
                Target(
                    "failed_tasks",
                    None,
                    False,
                    "reported only: the issue claims no failed-task count (the earlier goal "
                    "of 3 was not MemN2N's 1k figure)",
                ),
            ),
            provenance=(
                "benchmarks/results/babi-memn2n-joint-gated.md (gated hops, Liu & Perez "
                "2017; the additive hops of benchmarks/results/babi-memn2n-joint.md: 16.4%)"
            ),
        ),
    ),
)
