"""Feed-forward controller: an MLP applied to each step's input on its own."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator
from torch import Tensor, nn

from nma import Controller, Options, State

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}


class MLPController(Controller):
    """A feed-forward controller: all recurrence lives in the memory (NTM paper, §4).

    ``layers`` linear layers of ``hidden_size`` units, each followed by the activation
    and, with ``dropout = p > 0``, by dropout in training mode (Srivastava et al. 2014,
    "Dropout", JMLR 15: each unit zeroed with probability ``p``; the survivors are
    scaled by ``1 / (1 - p)`` during training, as ``nn.Dropout`` does, so evaluation
    needs no rescaling), a fresh mask at every step. It has no state of its own. With
    ``layers = 0`` it passes its input through unchanged (``output_size = input_size``):
    the model's interface and output layers then act on the input itself, so a memory's
    keys and values are linear embeddings of the input, as in End-To-End Memory Networks
    (Sukhbaatar et al. 2015, section 2.1)."""

    class Config(Options):
        hidden_size: int = Field(100, ge=1, description="Units per hidden layer.")
        layers: int = Field(
            1, ge=0, description="Hidden layers (0: the input passes through unchanged)."
        )
        activation: Literal["relu", "tanh", "gelu"] = Field(
            "relu", description="Non-linearity after each layer."
        )
        dropout: float = Field(
            0.0,
            ge=0,
            lt=1,
            description="Dropout probability after each hidden layer, in training only.",
        )

        @model_validator(mode="after")
        def _check(self) -> MLPController.Config:
            if self.dropout and not self.layers:
                raise ValueError(
                    "dropout acts on hidden layers: with layers = 0 the input passes "
                    "through unchanged and there is nothing to drop"
                )
            return self

    def __init__(self, config: Config, input_size: int) -> None:
        super().__init__(config, input_size)
        self.output_size = config.hidden_size if config.layers else input_size
        self.passes_input = not config.layers
        layers: list[nn.Module] = []
        size = input_size
        for _ in range(config.layers):
            layers += [nn.Linear(size, config.hidden_size), ACTIVATIONS[config.activation]()]
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
            size = config.hidden_size
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """One step: ``x`` ``(B, input_size)`` → ``(B, hidden_size)``; state stays ``None``."""
        return self.net(x), state
