"""SI's importance on a two-parameter quadratic, against its closed form."""

from __future__ import annotations

import torch
from torch import nn

from nma_plugins.regularizers.si import SIRegularizer

A = torch.tensor([2.0, 0.5], dtype=torch.float64)  # curvatures
C = torch.tensor([1.0, -2.0], dtype=torch.float64)  # minimum
THETA0 = torch.tensor([-1.0, 1.0], dtype=torch.float64)
LR, STEPS, XI = 0.1, 12, 1e-3


class Quadratic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.theta = nn.Parameter(THETA0.clone())

    def loss(self) -> torch.Tensor:
        return 0.5 * (A * (self.theta - C).pow(2)).sum()


def sgd(model: Quadratic, si: SIRegularizer, steps: int) -> None:
    for _ in range(steps):
        model.zero_grad()
        model.loss().backward()
        si.after_backward(model)
        with torch.no_grad():
            model.theta -= LR * model.theta.grad


def closed_form() -> tuple[torch.Tensor, torch.Tensor]:
    """Gradient descent on ½ a (θ - c)²: θ_t - c = r^t d with r = 1 - ηa, d = θ0 - c;
    g_t = a r^t d and Δθ_t = -η g_t, so ω = Σ_t η g_t² = η a² d² (1 - r^{2T}) / (1 - r²),
    and the total move is Δ = d (r^T - 1)."""
    d = THETA0 - C
    r = 1 - LR * A
    omega = LR * A**2 * d**2 * (1 - r ** (2 * STEPS)) / (1 - r**2)
    delta = d * (r**STEPS - 1)
    return omega, delta


def test_importance_matches_the_closed_form():
    model = Quadratic()
    si = SIRegularizer(SIRegularizer.Config(weight=0.7, damping=XI))
    sgd(model, si, STEPS)
    si.end_experience(model, [])
    omega, delta = closed_form()
    expected = omega / (delta**2 + XI)
    assert torch.allclose(si.anchor.importance["theta"], expected, rtol=1e-10)
    assert torch.allclose(si.anchor.anchor["theta"], model.theta.detach())
    # the penalty c Σ Ω (θ - θ*)² after a known move
    with torch.no_grad():
        model.theta += torch.tensor([0.3, -0.1], dtype=torch.float64)
    penalty = 0.7 * (expected * torch.tensor([0.09, 0.01], dtype=torch.float64)).sum()
    assert torch.isclose(si.penalty(model), penalty, rtol=1e-10)


def test_state_round_trip_mid_experience_continues_the_path_integral():
    model = Quadratic()
    si = SIRegularizer(SIRegularizer.Config(damping=XI))
    sgd(model, si, 5)
    resumed = SIRegularizer(SIRegularizer.Config(damping=XI))
    resumed.load_state_dict({k: v.clone() for k, v in si.state_dict().items()})
    sgd(model, resumed, STEPS - 5)
    resumed.end_experience(model, [])
    omega, delta = closed_form()
    assert torch.allclose(resumed.anchor.importance["theta"], omega / (delta**2 + XI), rtol=1e-10)


def test_importances_add_up_over_experiences():
    model = Quadratic()
    si = SIRegularizer(SIRegularizer.Config(damping=XI))
    sgd(model, si, STEPS)
    si.end_experience(model, [])
    first = si.anchor.importance["theta"].clone()
    with torch.no_grad():
        model.theta.copy_(THETA0)  # a second experience with the same path
    si.start = {}
    sgd(model, si, STEPS)
    si.end_experience(model, [])
    # the second path is the same but now carries SI's own penalty gradient: only
    # check that importance grew and stayed finite
    assert torch.all(si.anchor.importance["theta"] > first)
