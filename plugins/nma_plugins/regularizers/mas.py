"""Memory aware synapses (Aljundi et al. 2018)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer
from nma_plugins.regularizers.anchors import Anchor, zeros_like_params
from nma_plugins.regularizers.samples import device_of, first_sequences, single_sequences, tracked


class MASRegularizer(Regularizer):
    """MAS: importance from the sensitivity of the learned function, no labels needed.

    After experience ``k``, over ``N`` of its sequences ``x_n``:

        Ω^k_i = (1/N) Σ_n |∂ ||F(x_n; θ)||²₂ / ∂θ_i|

    where ``F(x_n)`` are the model's outputs at the scored steps (Aljundi et al.
    2018, eqs. 2 and 4: the squared L2 norm of the output, per sample). Importances
    add up over experiences, and later training adds ``λ Σ_i Ω_i (θ_i - θ*_i)²``
    with ``θ*`` the parameters after the latest experience (their eq. 3).
    """

    class Config(Options):
        weight: float = Field(1.0, ge=0, description="λ, the strength of the penalty.")
        samples: int = Field(
            200, ge=1, description="Sequences of the finished experience Ω is averaged over."
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.anchor = Anchor()

    def penalty(self, model: nn.Module) -> Tensor | None:
        """``λ Σ_i Ω_i (θ_i - θ*_i)²``, or ``None`` before the first experience ends."""
        term = self.anchor.penalty(model)
        return None if term is None else self.config.weight * term

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Add the finished experience's Ω; anchor at the current parameters."""
        params = tracked(model)
        omega = zeros_like_params(model)
        data = first_sequences(batches, self.config.samples)
        count = 0
        for sequence in single_sequences(data.to(device_of(model))):
            outputs = model(sequence.inputs)[0].float()
            norm = (outputs.pow(2).sum(-1) * sequence.mask).sum()
            grads = torch.autograd.grad(norm, list(params.values()), allow_unused=True)
            for name, g in zip(params, grads, strict=True):
                if g is not None:
                    omega[name] += g.detach().abs()
            count += 1
        importance = dict(self.anchor.importance)
        for name, value in omega.items():
            new = value / max(count, 1)
            importance[name] = importance.get(name, torch.zeros_like(new)).to(new.device) + new
        self.anchor.set(importance, model)

    def state_dict(self) -> dict[str, Tensor]:
        """``importance/NAME`` (Ω) and ``anchor/NAME`` (θ*)."""
        return self.anchor.state_dict("")

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore Ω and θ*."""
        self.anchor.load_state_dict(state, "")
