"""``nma experiment knowledge``: reasoning over graphs of triples (synthetic) and link
prediction on a real knowledge graph (Nations)."""

from __future__ import annotations

from nma.experiments.quick import quick
from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="knowledge",
    title="Knowledge graphs: link, multi-hop and path queries; link prediction on Nations",
    configurations=(
        Configuration(
            name="dnc-lstm",
            options={
                "components.memory": "dnc",
                "components.controller": "lstm",
                "components.task": "knowledge",
                "memory.slots": 32,
                "train.steps": 5000,
                "train.batch_size": 64,
                "train.lr": 3e-3,
                "train.eval_every": 500,
                "task.curriculum_steps": 1000,
            },
            quick=quick(task__max_nodes=6),
            targets=(Target("accuracy", 0.85, True, "the issue: ≥ 85%"),),
            provenance=(
                "benchmarks/results/knowledge-dnc-lstm.md (accuracy 0.233 after 5,000 "
                "steps: target not reached)"
            ),
        ),
        Configuration(
            name="kg-nations-dnc-lstm",
            options={
                "components.memory": "dnc",
                "components.controller": "lstm",
                "components.task": "kg-completion",
                "task.dataset": "nations",
                "train.batch_size": 32,
                "train.lr": 2e-3,
                "train.steps": 6000,
                "train.eval_every": 1000,
            },
            quick=quick(task__context_size=4),
            targets=(Target("mrr", 0.82, True, "ConvE, filtered MRR on Nations"),),
            provenance="benchmarks/results/kg-nations-dnc-lstm.md (filtered MRR 0.837)",
        ),
    ),
)
