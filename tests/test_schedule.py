"""The learning-rate schedule: a function of the step alone, applied by the trainer."""

from __future__ import annotations

import math

import torch
from rich.console import Console

from nma.checkpoint import _flatten_optimizer
from nma.config import TrainConfig, build_raw, resolve
from nma.registry import get_registry
from nma.run import create_run
from nma.trainer import learning_rate, set_learning_rate, train

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=16", "task.width=3"]


def test_cosine_falls_from_lr_to_the_final_ratio():
    cfg = TrainConfig(steps=11, lr=1e-2, lr_final_ratio=0.1)
    rates = [learning_rate(cfg, s) for s in range(11)]
    assert math.isclose(rates[0], 1e-2) and math.isclose(rates[-1], 1e-3)
    assert math.isclose(rates[5], 1e-2 * (0.1 + 0.9 * 0.5))  # half way: the mean
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))
    assert learning_rate(cfg, 50) == rates[-1]  # an extended run stays at the end value


def test_constant_schedule():
    cfg = TrainConfig(steps=10, lr=3e-4, lr_schedule="constant")
    assert {learning_rate(cfg, s) for s in range(10)} == {3e-4}


def test_the_trainer_applies_the_schedule(tmp_path):
    registry = get_registry()
    options = [*SMALL, "task.max_length=3", "train.steps=5", "train.eval_every=0"]
    options += ["train.checkpoint_every=0", "train.device='cpu'", f"train.out_dir='{tmp_path}'"]
    run = create_run(resolve(build_raw(None, {}, options), registry), registry, Console(quiet=True))
    train(run, show_progress=False)
    cfg = run.config.train
    assert run.optimizer.param_groups[0]["lr"] == learning_rate(cfg, 4)
    assert learning_rate(cfg, 4) < cfg.lr


def test_a_tensor_learning_rate_is_checkpointed_as_its_value():
    param = torch.nn.Parameter(torch.zeros(2))
    optimizer = torch.optim.Adam([param], lr=torch.tensor(0.01))
    set_learning_rate(optimizer, 0.005)
    assert isinstance(optimizer.param_groups[0]["lr"], torch.Tensor)
    _, plain = _flatten_optimizer(optimizer.state_dict())
    assert plain["param_groups"][0]["lr"] == torch.tensor(0.005).item()


def test_step_schedule_multiplies_by_the_factor_every_k_steps():
    cfg = TrainConfig(steps=100, lr=0.01, lr_schedule="step", lr_step_every=15, lr_step_factor=0.5)
    rates = [learning_rate(cfg, s) for s in range(100)]
    assert set(rates[:15]) == {0.01} and set(rates[15:30]) == {0.005}
    assert rates[45] == 0.01 / 8 and rates[99] == 0.01 / 64  # 99 // 15 = 6 decays
