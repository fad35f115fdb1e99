"""A-GEM's projection formula (Chaudhry et al. 2019, eq. 11)."""

from __future__ import annotations

import torch

from nma_plugins.regularizers.agem import AGEMRegularizer
from nma_plugins.regularizers.projection import agem_project
from tests.plugins.cl_helpers import SquaredErrorTask, TinyModel, one_step_batch


def test_projection_formula():
    g = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    ref = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    dot = 1.0 * 0 + -2.0 * 1 + 0.5 * 1  # -1.5
    expected = g - dot / 2.0 * ref  # g_ref·g_ref = 2
    projected = agem_project(g, ref)
    assert torch.allclose(projected, expected)
    assert abs(float(torch.dot(projected, ref))) < 1e-12  # on the constraint's boundary
    assert torch.equal(agem_project(g, -ref), g)  # no conflict: unchanged


def test_the_regularizer_uses_the_memory_gradient_as_reference():
    task = SquaredErrorTask()
    model = TinyModel([0.3, -0.2], 0.1)
    agem = AGEMRegularizer(AGEMRegularizer.Config(memory_size=1, sample_size=4))
    agem.bind(task)
    memory = one_step_batch([[1.0, 2.0]], [3.0])
    agem.end_experience(model, iter([memory]))
    new = one_step_batch([[1.0, 2.0]], [-4.0])
    model.zero_grad()
    task.loss(model(memory.inputs)[0], memory).backward()
    ref = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    model.zero_grad()
    task.loss(model(new.inputs)[0], new).backward()
    g = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    agem.after_backward(model)
    got = torch.cat([model.linear.weight.grad.flatten(), model.linear.bias.grad])
    assert torch.allclose(got, g - torch.dot(g, ref) / torch.dot(ref, ref) * ref, atol=1e-6)
    state = agem.state_dict()
    again = AGEMRegularizer(AGEMRegularizer.Config(memory_size=1))
    again.load_state_dict(state)
    assert torch.equal(again.memory.inputs, memory.inputs)
    assert torch.equal(again.generator.get_state(), agem.generator.get_state())
