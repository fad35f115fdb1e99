"""``nma experiment continual``: naive fine-tuning against replay on permuted digits,
through ``nma continual``'s code (:func:`nma.continual.compare_methods`)."""

from __future__ import annotations

from nma.experiments.spec import Configuration, Experiment, Target

EXPERIMENT = Experiment(
    name="continual",
    title="Continual learning: forgetting of naive fine-tuning against replay",
    kind="continual",
    configurations=(
        Configuration(
            name="permuted-digits-ntm-lstm",
            options={
                "components.memory": "ntm",
                "components.controller": "lstm",
                "components.task": "permuted-digits",
                "task.num_experiences": 5,
                "memory.slots": 8,
                "memory.width": 8,
                "controller.hidden_size": 64,
                "train.experience_steps": 400,
                "train.batch_size": 32,
                "train.lr": 0.003,
                "train.eval_every": 0,
                "train.checkpoint_every": 0,
                "regularizer.replay.capacity": 2000,
                "regularizer.replay.replay_size": 96,
            },
            quick={
                "task.num_experiences": 2,
                "controller.hidden_size": 24,
                "train.experience_steps": 10,
                "train.batch_size": 8,
                "train.log_every": 5,
                "regularizer.replay.capacity": 200,
                "regularizer.replay.replay_size": 8,
            },
            targets=(
                Target(
                    "forgetting_reduction",
                    0.80,
                    True,
                    "docs/continual.md: average forgetting 80% below naive",
                ),
                Target(
                    "acc_below_joint",
                    0.05,
                    False,
                    "docs/continual.md: ACC within 5 points of joint",
                ),
            ),
            provenance="benchmarks/results/permuted-digits-ntm-lstm.md (98% less, 1.7 points)",
            methods=("naive", "replay", "joint"),
        ),
    ),
)
