"""train.optimizer: AdamW by default, or plain SGD with momentum (nma/optimizer.py)."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

from nma import UsageError
from nma.config import build_raw, resolve
from nma.registry import get_registry
from nma.run import RunContext, create_run
from nma.trainer import train

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=8", "task.width=3"]


def make_run(tmp_path, *options: str) -> RunContext:
    chosen = [*SMALL, *options, "train.device='cpu'", f"train.out_dir='{tmp_path}'"]
    registry = get_registry()
    return create_run(resolve(build_raw(None, {}, chosen), registry), registry, Console(quiet=True))


def test_adam_is_the_default(tmp_path):
    assert isinstance(make_run(tmp_path).optimizer, torch.optim.AdamW)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_steps_are_plain_sgd_with_momentum(tmp_path, momentum):
    run = make_run(tmp_path, "train.optimizer='sgd'", "train.lr=0.1", f"train.momentum={momentum}")
    assert isinstance(run.optimizer, torch.optim.SGD)
    params = list(run.model.parameters())
    before = [p.detach().clone() for p in params]
    grads = [torch.randn_like(p) for p in params]
    velocity = [torch.zeros_like(p) for p in params]
    expected = [p.clone() for p in before]
    for _ in range(2):  # by hand: v = momentum v + g (v = g at the first step); p -= lr v
        for p, g in zip(params, grads, strict=True):
            p.grad = g.clone()
        run.optimizer.step()
        for i, g in enumerate(grads):
            velocity[i] = momentum * velocity[i] + g
            expected[i] = expected[i] - 0.1 * velocity[i]
    for p, want in zip(params, expected, strict=True):
        torch.testing.assert_close(p.detach(), want, rtol=0, atol=1e-6)


def test_a_run_trains_with_sgd_and_the_step_schedule(tmp_path):
    run = make_run(
        tmp_path, "train.optimizer='sgd'", "train.lr=0.2", "train.lr_schedule='step'",
        "train.lr_step_every=2", "train.lr_step_factor=0.5", "train.steps=5",
        "train.eval_every=0", "train.checkpoint_every=0", "task.max_length=3",
    )  # fmt: skip
    train(run, show_progress=False)
    assert run.optimizer.param_groups[0]["lr"] == 0.2 * 0.5**2  # the last step, 4 // 2 = 2


def test_cuda_graph_needs_adam(tmp_path):
    with pytest.raises(UsageError, match="needs train.optimizer = adam"):
        make_run(tmp_path, "train.optimizer='sgd'", "train.cuda_graph=true")
