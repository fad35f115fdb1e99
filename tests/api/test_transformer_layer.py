"""``TransformerMemoryLayer``: causal segment attention plus top-k retrieval of earlier ones."""

from __future__ import annotations

import torch
from torch import nn

from nma.layers import TransformerMemoryLayer
from tests.api.training import train_losses, went_down


def _identity_attention(layer: TransformerMemoryLayer) -> None:
    with torch.no_grad():
        for linear in (layer.query, layer.key, layer.value):
            linear.weight.copy_(torch.eye(4) * 10)
            linear.bias.zero_()
        layer.value.weight.copy_(torch.eye(4))
        layer.gate.fill_(50.0)  # read only the memory where it finds something


def test_a_segment_retrieves_what_an_earlier_segment_stored() -> None:
    torch.manual_seed(0)
    layer = TransformerMemoryLayer(4, num_heads=1, memory_size=8, top_k=1)
    _identity_attention(layer)
    stored = torch.eye(4)[:3].unsqueeze(1) * 3  # (T=3, B=1, 4): three distinct tokens
    _, state = layer(stored)
    assert layer.memory.inspect(state)["usage"].sum() > 2.99  # three pairs written
    query = stored[1:2]  # segment 2: the second token again
    u = layer.norm_attention(query)
    attended, _, _ = layer.attend(u, state)
    assert torch.allclose(attended[0, 0], layer.norm_attention(stored[1, 0]), atol=1e-5)
    empty = layer.initial_state(1)
    alone, _, _ = layer.attend(u, empty)  # nothing stored: attends to itself only
    assert torch.allclose(alone[0, 0], u[0, 0], atol=1e-5)
    assert not layer.memory.inspect(state)["keys"].requires_grad  # stored detached


def test_attention_within_a_segment_is_causal_and_memory_carries_on() -> None:
    torch.manual_seed(0)
    layer = TransformerMemoryLayer(8, num_heads=2, memory_size=16, top_k=3, batch_first=True)
    x = torch.randn(2, 5, 8)
    changed = x.clone()
    changed[:, 3] += 1
    y, state = layer(x)
    assert torch.equal(layer(changed)[0][:, :3], y[:, :3])
    again, _ = layer(x, state)
    assert not torch.allclose(again, y)  # the second segment also reads the first


def test_transformer_layer_inside_a_users_module_learns() -> None:
    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = nn.Linear(8, 32)
            self.block = TransformerMemoryLayer(32, 4, memory_size=32, top_k=4, batch_first=True)
            self.out = nn.Linear(32, 8)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.block(self.embed(x))
            return self.out(h)

    torch.manual_seed(0)
    model = Encoder()
    assert went_down(train_losses(model, list(model.parameters())))
