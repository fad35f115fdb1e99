"""MAS's importance of a tiny model, by hand."""

from __future__ import annotations

import torch

from nma_plugins.regularizers.mas import MASRegularizer
from tests.plugins.cl_helpers import SquaredErrorTask, TinyModel, one_step_batch

XS = [[1.0, 2.0], [0.5, -1.0], [-2.0, 0.0]]


def test_importance_is_the_mean_absolute_gradient_of_the_squared_output():
    w, b = [0.3, -0.2], 0.1
    model = TinyModel(w, b)
    mas = MASRegularizer(MASRegularizer.Config(weight=3.0, samples=3))
    mas.bind(SquaredErrorTask())
    mas.end_experience(model, [one_step_batch(XS, [0.0] * 3)])
    # ||y||² = y², ∂/∂w = 2 y x, ∂/∂b = 2 y
    ys = [w[0] * x1 + w[1] * x2 + b for x1, x2 in XS]
    ow = [sum(abs(2 * y * x[k]) for y, x in zip(ys, XS, strict=True)) / 3 for k in range(2)]
    ob = sum(abs(2 * y) for y in ys) / 3
    assert torch.allclose(mas.anchor.importance["linear.weight"], torch.tensor([ow]))
    assert torch.allclose(mas.anchor.importance["linear.bias"], torch.tensor([ob]))
    with torch.no_grad():
        model.linear.bias += 0.5
    assert torch.isclose(mas.penalty(model), torch.tensor(3.0 * ob * 0.25))
    # a second experience adds its importance to the first
    mas.end_experience(model, [one_step_batch(XS, [0.0] * 3)])
    ys2 = [y + 0.5 for y in ys]
    ob2 = sum(abs(2 * y) for y in ys2) / 3
    assert torch.allclose(mas.anchor.importance["linear.bias"], torch.tensor([ob + ob2]))
