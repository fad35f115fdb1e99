"""GEM's projection: every constraint holds, and it is the closest such gradient (a
quadratic programme solved independently with scipy, in float64)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from nma_plugins.regularizers.gem import GEMRegularizer
from nma_plugins.regularizers.projection import gem_project
from tests.plugins.cl_helpers import SquaredErrorTask, TinyModel, one_step_batch


def closest_feasible(g: np.ndarray, memories: np.ndarray) -> np.ndarray:
    """min ½ ||x - g||² s.t. memories @ x ≥ 0, the primal, by SLSQP."""
    result = minimize(
        lambda x: 0.5 * np.sum((x - g) ** 2),
        g.copy(),
        jac=lambda x: x - g,
        constraints=[{"type": "ineq", "fun": lambda x: memories @ x, "jac": lambda x: memories}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    assert result.success, result.message
    return result.x


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_projection_is_the_closest_gradient_satisfying_every_constraint(seed):
    rng = np.random.default_rng(seed)
    memories = rng.normal(size=(4, 7))
    g = -memories[:2].sum(0) + 0.3 * rng.normal(size=7)  # conflicts with some memories
    assert (memories @ g < 0).any()
    projected = gem_project(torch.tensor(g), torch.tensor(memories)).numpy()
    assert (memories @ projected >= -1e-9).all()
    expected = closest_feasible(g, memories)
    assert np.allclose(projected, expected, atol=1e-6)
    assert np.sum((projected - g) ** 2) <= np.sum((expected - g) ** 2) + 1e-9


def test_no_conflict_leaves_the_gradient_alone():
    g = torch.tensor([1.0, 2.0, 0.0], dtype=torch.float64)
    memories = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 5.0]], dtype=torch.float64)
    assert torch.equal(gem_project(g, memories), g)


def test_a_margin_pushes_further_along_the_memories():
    rng = np.random.default_rng(5)
    memories = torch.tensor(rng.normal(size=(3, 5)))
    g = -memories[0] * 2
    plain = gem_project(g, memories)
    strong = gem_project(g, memories, margin=0.5)
    assert (memories @ strong >= memories @ plain - 1e-9).all()


def test_the_regularizer_projects_the_model_gradient():
    task = SquaredErrorTask()
    model = TinyModel([0.3, -0.2], 0.1)
    gem = GEMRegularizer(GEMRegularizer.Config(memory_size=2))
    gem.bind(task)
    old = [one_step_batch([[1.0, 2.0], [0.5, -1.0]], [3.0, 1.0])]
    gem.end_experience(model, iter(old))
    new = one_step_batch([[1.0, 2.0]], [-4.0])  # pulls the other way
    model.zero_grad()
    task.loss(model(new.inputs)[0], new).backward()
    g = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    memory = gem.memories[0]
    model.zero_grad()
    task.loss(model(memory.inputs)[0], memory).backward()
    g_mem = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    assert torch.dot(g, g_mem) < 0
    model.zero_grad()
    task.loss(model(new.inputs)[0], new).backward()
    gem.after_backward(model)
    projected = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    # one constraint: the closest feasible vector is g minus its component along g_mem
    expected = g - torch.dot(g, g_mem) / torch.dot(g_mem, g_mem) * g_mem
    assert torch.allclose(projected, expected, atol=1e-6)
    restored = GEMRegularizer(GEMRegularizer.Config(memory_size=2))
    restored.load_state_dict(gem.state_dict())
    assert len(restored.memories) == 1 and torch.equal(restored.memories[0].inputs, memory.inputs)
