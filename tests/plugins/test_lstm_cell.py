"""The LSTM cell on the native kernels against ``torch.nn.LSTMCell``, which shares no
code with it: values and the gradients at the input, both states, both weights and both
biases, in float64, with gradients arriving at either output or both."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma_plugins.controllers.lstm import LSTMController
from nma_plugins.controllers.lstm_cell import NativeLSTMCell, lstm_cell_step

F64 = torch.float64


def cell_and_inputs(batch: int, inputs: int, hidden: int) -> tuple[nn.LSTMCell, list]:
    torch.manual_seed(batch + inputs + hidden)
    module = nn.LSTMCell(inputs, hidden).double()
    x = torch.randn(batch, inputs, dtype=F64, requires_grad=True)
    h = torch.randn(batch, hidden, dtype=F64, requires_grad=True)
    c = torch.randn(batch, hidden, dtype=F64, requires_grad=True)
    return module, [x, h, c]


@pytest.mark.parametrize(("batch", "inputs", "hidden"), [(16, 30, 100), (3, 5, 7), (1, 9, 1)])
@pytest.mark.parametrize("used", [(0, 1), (0,), (1,)])
def test_matches_nn_lstm_cell(batch: int, inputs: int, hidden: int, used: tuple) -> None:
    module, (x, h, c) = cell_and_inputs(batch, inputs, hidden)
    leaves = [x, h, c, *module.parameters()]
    results = []
    for native in (True, False):
        if native:
            outputs = NativeLSTMCell.apply(
                x, h, c, module.weight_ih, module.weight_hh, module.bias_ih, module.bias_hh
            )
        else:
            outputs = module(x, (h, c))
        loss = sum(
            (outputs[i] * torch.linspace(-2, 1, outputs[i].numel(), dtype=F64).view_as(outputs[i]))
            .cos()
            .sum()
            for i in used
        )
        results.append((outputs, torch.autograd.grad(loss, leaves)))
    (ours, our_grads), (theirs, their_grads) = results
    for got, want in zip(ours, theirs, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for got, want in zip(our_grads, their_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)


def test_gradcheck() -> None:
    module, (x, h, c) = cell_and_inputs(2, 3, 4)
    weights = tuple(p.detach().clone().requires_grad_() for p in module.parameters())
    assert torch.autograd.gradcheck(NativeLSTMCell.apply, (x, h, c, *weights))


def test_dispatch_and_autocast() -> None:
    """Native on the CPU in float32/64; under autocast the module itself runs, with
    autocast's own choice of precision."""
    module, (x, h, c) = cell_and_inputs(2, 3, 4)
    new_h, _ = lstm_cell_step(module, x, h, c)
    assert type(new_h.grad_fn).__name__ == "NativeLSTMCellBackward"
    module = module.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        new_h, _ = lstm_cell_step(module, x.float(), h.float(), c.float())
        want, _ = module(x.float(), (h.float(), c.float()))
    assert type(new_h.grad_fn).__name__ != "NativeLSTMCellBackward"
    assert new_h.dtype == want.dtype


def test_controller_steps_the_native_cell(fused_path: str) -> None:
    controller = LSTMController(LSTMController.Config(hidden_size=6, layers=2), 4).double()
    state = controller.initial_state(3, torch.device("cpu"), F64)
    x = torch.randn(3, 4, dtype=F64, requires_grad=True)
    out, new = controller(x, state)
    reference = x
    for layer, cell in enumerate(controller.cells):
        reference, _ = cell(reference, (state.hidden[layer], state.cell[layer]))
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    native = type(out.grad_fn).__name__ == "NativeLSTMCellBackward"
    assert native == (fused_path == "native")
    assert new.hidden.shape == (2, 3, 6)
