"""The ``lstm`` and ``mlp`` controllers."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from nma_plugins.controllers.lstm import LSTMController, LSTMState
from nma_plugins.controllers.mlp import MLPController


def test_lstm_matches_torch_lstm_cells_step_by_step():
    torch.manual_seed(0)
    controller = LSTMController(LSTMController.Config(hidden_size=5, layers=2), input_size=3)
    reference = torch.nn.LSTM(3, 5, num_layers=2)
    with torch.no_grad():
        for layer, cell in enumerate(controller.cells):
            getattr(reference, f"weight_ih_l{layer}").copy_(cell.weight_ih)
            getattr(reference, f"weight_hh_l{layer}").copy_(cell.weight_hh)
            getattr(reference, f"bias_ih_l{layer}").copy_(cell.bias_ih)
            getattr(reference, f"bias_hh_l{layer}").copy_(cell.bias_hh)
    xs = torch.randn(6, 4, 3)
    state = controller.initial_state(4, torch.device("cpu"), torch.float32)
    assert isinstance(state, LSTMState) and state.hidden.shape == (2, 4, 5)
    outputs = []
    for x in xs:
        out, state = controller(x, state)
        outputs.append(out)
    expected, (h, c) = reference(xs)
    assert torch.allclose(torch.stack(outputs), expected, atol=1e-6)
    assert torch.allclose(state.hidden, h, atol=1e-6)
    assert torch.allclose(state.cell, c, atol=1e-6)
    assert controller.output_size == 5


def test_mlp_is_stateless_and_feed_forward():
    torch.manual_seed(0)
    controller = MLPController(MLPController.Config(hidden_size=7, layers=2), input_size=3)
    x = torch.randn(4, 3)
    out, state = controller(x, controller.initial_state(4, torch.device("cpu"), torch.float32))
    assert state is None and out.shape == (4, 7)
    first, _, second, _ = controller.net
    assert torch.allclose(out, torch.relu(second(torch.relu(first(x)))))


def test_mlp_dropout_zeroes_and_rescales_hidden_units_in_training_only():
    torch.manual_seed(0)
    config = MLPController.Config(hidden_size=200, layers=1, dropout=0.25)
    controller = MLPController(config, input_size=3)
    first = controller.net[0]
    x = torch.randn(8, 3)
    clean = torch.relu(first(x))
    controller.eval()
    out, _ = controller(x, None)
    assert torch.equal(out, clean)  # evaluation: no dropout
    controller.train()
    out, _ = controller(x, None)
    again, _ = controller(x, None)
    kept = out != 0
    assert torch.allclose(out[kept], clean[kept] / 0.75)  # survivors scaled by 1 / (1 - p)
    dropped = (clean > 0) & ~kept
    assert 0.15 < dropped.sum() / (clean > 0).sum() < 0.35
    assert not torch.equal(out, again)  # a fresh mask per call


def test_mlp_dropout_needs_a_hidden_layer():
    with pytest.raises(ValidationError, match="nothing to drop"):
        MLPController.Config(layers=0, dropout=0.1)
    with pytest.raises(ValidationError):
        MLPController.Config(dropout=1.0)
