"""The ``gru`` controller against Cho et al. (2014) eqs. (5)-(8) in float64 and nn.GRUCell."""

from __future__ import annotations

import math

import pytest
import torch

from nma_plugins.controllers.gru import GRUController, GRUState


def _sigmoid(v: float) -> float:
    return 1 / (1 + math.exp(-v))


def _reference_step(cell: torch.nn.GRUCell, x: list[float], h: list[float], reset_after: bool):
    """One GRU step with plain floats, straight from the equations."""
    w, u = cell.weight_ih.tolist(), cell.weight_hh.tolist()
    bw, bu = cell.bias_ih.tolist(), cell.bias_hh.tolist()
    size = len(h)

    def wx(row: int) -> float:
        return sum(w[row][i] * x[i] for i in range(len(x))) + bw[row]

    def uh(row: int, vec: list[float]) -> float:
        return sum(u[row][j] * vec[j] for j in range(size)) + bu[row]

    r = [_sigmoid(wx(k) + uh(k, h)) for k in range(size)]  # eq. (5)
    z = [_sigmoid(wx(size + k) + uh(size + k, h)) for k in range(size)]  # eq. (6)
    if reset_after:
        n = [math.tanh(wx(2 * size + k) + r[k] * uh(2 * size + k, h)) for k in range(size)]
    else:
        rh = [r[j] * h[j] for j in range(size)]
        n = [math.tanh(wx(2 * size + k) + uh(2 * size + k, rh)) for k in range(size)]  # eq. (8)
    return [z[k] * h[k] + (1 - z[k]) * n[k] for k in range(size)]  # eq. (7)


@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_matches_the_equations_in_float64(reset_after: bool) -> None:
    torch.manual_seed(0)
    config = GRUController.Config(hidden_size=4, layers=2, reset_after=reset_after)
    controller = GRUController(config, input_size=3).double()
    xs = torch.randn(5, 2, 3, dtype=torch.float64)
    state = controller.initial_state(2, torch.device("cpu"), torch.float64)
    assert isinstance(state, GRUState) and state.hidden.shape == (2, 2, 4)
    hidden = [[[0.0] * 4 for _ in range(2)] for _ in range(2)]  # [layer][batch]
    for x in xs:
        out, state = controller(x, state)
        for b in range(2):
            inp = x[b].tolist()
            for layer, cell in enumerate(controller.cells):
                hidden[layer][b] = _reference_step(cell, inp, hidden[layer][b], reset_after)
                inp = hidden[layer][b]
        expected = torch.tensor(hidden, dtype=torch.float64)
        assert torch.allclose(state.hidden, expected, atol=1e-12)
        assert torch.allclose(out, expected[-1], atol=1e-12)


def test_gru_reset_after_is_nn_gru_cell_and_the_variants_differ() -> None:
    torch.manual_seed(1)
    controller = GRUController(GRUController.Config(hidden_size=5), input_size=3)
    reference = torch.nn.GRUCell(3, 5)
    reference.load_state_dict(controller.cells[0].state_dict())
    x, h = torch.randn(4, 3), torch.randn(4, 5)
    out, _ = controller(x, GRUState(h.unsqueeze(0)))
    assert torch.allclose(out, reference(x, h), atol=1e-6)
    before = GRUController(GRUController.Config(hidden_size=5, reset_after=False), input_size=3)
    before.load_state_dict(controller.state_dict())
    other, _ = before(x, GRUState(h.unsqueeze(0)))
    assert not torch.allclose(out, other, atol=1e-3)
    assert controller.output_size == 5
