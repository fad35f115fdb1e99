"""The ``l2`` regularizer."""

from __future__ import annotations

import torch

from nma_plugins.regularizers.l2 import L2Regularizer


def test_penalty_is_weighted_squared_norm_of_weights():
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, -4.0]]))
        model.bias.fill_(10.0)
    weights_only = L2Regularizer(L2Regularizer.Config(weight=0.1))
    assert torch.isclose(weights_only.penalty(model), torch.tensor(2.5))  # 0.1 * 25
    everything = L2Regularizer(L2Regularizer.Config(weight=0.1, include_biases=True))
    assert torch.isclose(everything.penalty(model), torch.tensor(12.5))  # 0.1 * (25 + 100)


def test_penalty_gradient_is_two_lambda_theta():
    model = torch.nn.Linear(3, 2)
    L2Regularizer(L2Regularizer.Config(weight=0.5)).penalty(model).backward()
    assert torch.allclose(model.weight.grad, model.weight.detach())
    assert model.bias.grad is None
