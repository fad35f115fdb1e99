"""L2 regularisation: weight decay toward zero as a loss term."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Options, Regularizer


class L2Regularizer(Regularizer):
    """Adds ``weight * Σ_i θ_i²`` over the model's parameters to the loss.

    With ``include_biases = false`` only parameters of two or more dimensions
    (weight matrices, memory initialisations) are penalised.
    """

    class Config(Options):
        weight: float = Field(1e-5, ge=0, description="Coefficient λ of the squared norm.")
        include_biases: bool = Field(
            False, description="Penalise one-dimensional parameters (biases) too."
        )

    def penalty(self, model: nn.Module) -> Tensor:
        """``λ Σ θ²``, a scalar."""
        params = [
            p
            for p in model.parameters()
            if p.requires_grad and (self.config.include_biases or p.dim() > 1)
        ]
        if not params:
            return torch.zeros(())
        return self.config.weight * sum(p.pow(2).sum() for p in params)
