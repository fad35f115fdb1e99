"""``RecurrentMemoryLayer``: the nn.LSTM calling convention over controller + memory."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nma.layers import RecurrentMemoryLayer
from nma.model import ModelState
from nma.state import detach_state
from tests.api.training import train_losses, went_down


@pytest.mark.parametrize("controller", ["lstm", "gru", "mlp", "transformer"])
def test_running_in_two_halves_with_the_state_equals_one_run(controller: str) -> None:
    torch.manual_seed(0)
    layer = RecurrentMemoryLayer(
        3, 8, "dnc", controller, {"slots": 6, "width": 4}, batch_first=True,
        controller_options={"heads": 2, "window": 3} if controller == "transformer" else None,
    )  # fmt: skip
    inputs = torch.randn(2, 7, 3)
    whole, final = layer(inputs)
    assert whole.shape == (2, 7, 8) and isinstance(final, ModelState)
    first, state = layer(inputs[:, :4])
    second, end = layer(inputs[:, 4:], detach_state(state))
    assert torch.allclose(torch.cat([first, second], dim=1), whole, atol=1e-6)
    assert torch.allclose(end.reads, final.reads, atol=1e-6)


def test_recurrent_layer_inside_a_users_module_learns() -> None:
    class Stack(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.recurrent = RecurrentMemoryLayer(8, 32, "ntm", "gru", {"slots": 8, "width": 6})
            self.out = nn.Linear(32, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:  # batch-first in and out
            hidden, _ = self.recurrent(x.transpose(0, 1))
            return self.out(torch.relu(hidden)).transpose(0, 1)

    torch.manual_seed(0)
    model = Stack()
    assert went_down(train_losses(model, list(model.parameters())))
