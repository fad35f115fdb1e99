"""Every ready-made model: built with the documented example arguments, trained a few
steps with a plain PyTorch loop on a DataLoader, its loss goes down."""

from __future__ import annotations

import pytest
import torch

import nma.models as models
from nma.model import ModelState
from tests.api.training import train_losses, went_down

EXAMPLE = {"input_size": 8, "hidden_size": 64, "memory_size": 128, "memory_dim": 20}
"""The example arguments of docs/python-api.md."""

MODELS = [
    "NeuralTuringMachine",
    "DifferentiableNeuralComputer",
    "MemoryAugmentedNetwork",
    "MemoryEnhancedRNN",
    "MemoryTransformer",
    "ReasoningNetwork",
    "KnowledgeGraphModel",
    "TemporalMemoryModel",
]


@pytest.mark.parametrize("name", MODELS)
def test_model_trains_on_a_dataloader(name: str) -> None:
    torch.manual_seed(0)
    cls = getattr(models, name)
    model = cls(EXAMPLE["input_size"], EXAMPLE["hidden_size"], EXAMPLE["memory_size"],
                EXAMPLE["memory_dim"], batch_first=True)  # fmt: skip
    assert model.output_size == EXAMPLE["input_size"]
    losses = train_losses(lambda x: model(x)[0], list(model.parameters()))
    assert went_down(losses), losses


@pytest.mark.parametrize("name", MODELS)
def test_model_state_carries_a_sequence_on(name: str) -> None:
    torch.manual_seed(0)
    model = getattr(models, name)(4, 16, 8, 4, output_size=3).eval()
    inputs = torch.randn(6, 2, 4)
    whole, _ = model(inputs)
    assert whole.shape == (6, 2, 3)
    if name == "MemoryTransformer":  # segments of 16: run two whole calls instead
        first, state = model(inputs)
        again, _ = model(inputs, state)
        assert not torch.allclose(first, again)  # the second call retrieves the first
        return
    first, state = model(inputs[:3])
    assert isinstance(state, ModelState)
    second, _ = model(inputs[3:], state)
    assert torch.allclose(torch.cat([first, second]), whole, atol=1e-6)


def test_models_take_their_own_options() -> None:
    ntm = models.NeuralTuringMachine(8, 32, 16, 6, output_size=2, read_heads=2)
    assert ntm.memory.read_size == 12 and ntm.output_size == 2
    rnn = models.MemoryEnhancedRNN(8, 32, 16, 6, memory="dnc", cell="lstm", read_heads=1)
    assert type(rnn.memory).__name__ == "DNCMemory" and rnn.memory.read_size == 6
    reasoning = models.ReasoningNetwork(8, 32, 16, 6, hops=2)
    assert reasoning.memory.config.hops == 2 and reasoning.memory.config.key_size == 6
