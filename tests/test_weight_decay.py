"""train.weight_decay: decoupled weight decay (AdamW, Loshchilov & Hutter 2019, Alg. 2)."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

from nma.config import build_raw, resolve
from nma.registry import get_registry
from nma.run import RunContext, create_run

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=8", "task.width=3"]


def make_run(tmp_path, decay: float) -> RunContext:
    options = [*SMALL, "train.lr=0.1", f"train.weight_decay={decay}", "train.device='cpu'",
               f"train.out_dir='{tmp_path / str(decay)}'"]  # fmt: skip
    registry = get_registry()
    return create_run(
        resolve(build_raw(None, {}, options), registry), registry, Console(quiet=True)
    )


@pytest.mark.parametrize("decay", [0.0, 0.5])
def test_a_step_without_gradient_shrinks_each_parameter_by_one_minus_lr_decay(tmp_path, decay):
    run = make_run(tmp_path, decay)
    params = list(run.model.parameters())
    before = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)  # Adam's own update is 0 for a zero gradient
    run.optimizer.step()
    for p, old in zip(params, before, strict=True):
        torch.testing.assert_close(p.detach(), old * (1 - 0.1 * decay), rtol=0, atol=1e-7)


def test_without_decay_the_steps_are_adams(tmp_path):
    run = make_run(tmp_path, 0.0)
    reference = [p.detach().clone().requires_grad_() for p in run.model.parameters()]
    adam = torch.optim.Adam(reference, lr=0.1)
    for step in range(3):
        grads = [torch.randn_like(p, generator=None) * (step + 1) for p in reference]
        for p, q, g in zip(run.model.parameters(), reference, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        run.optimizer.step()
        adam.step()
    for p, q in zip(run.model.parameters(), reference, strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-7)
