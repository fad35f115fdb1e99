"""Synaptic intelligence (Zenke, Poole & Ganguli 2017)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer
from nma_plugins.regularizers.anchors import Anchor, zeros_like_params
from nma_plugins.regularizers.samples import tracked


class SIRegularizer(Regularizer):
    """SI: each parameter's contribution to the fall of the loss along its path.

    During experience ``μ``, after every step ``t`` (gradient ``g(t)``, the one the
    optimiser applies, parameter change ``Δθ(t) = θ(t+1) - θ(t)``):

        ω^μ_k += -g_k(t) Δθ_k(t)                  (Zenke et al. 2017, eq. 3, discretised)

    At the end of the experience, with ``Δ^μ_k`` the parameter's total change over it:

        Ω_k += max(0, ω^μ_k / ((Δ^μ_k)² + ξ))     (eq. 5; negative terms dropped)

    and later training adds ``c Σ_k Ω_k (θ_k - θ*_k)²`` with ``θ*`` the parameters
    at the end of the latest experience (eq. 4). State: ω, Ω, θ*, the parameters at
    the start of the experience and the previous step's parameters and gradient, so
    a resumed run continues the path integral exactly.
    """

    class Config(Options):
        weight: float = Field(1.0, ge=0, description="c, the strength of the penalty.")
        damping: float = Field(
            1e-3, gt=0, description="ξ, keeps Ω finite for parameters that barely moved."
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.anchor = Anchor()
        self.omega: dict[str, Tensor] = {}
        self.start: dict[str, Tensor] = {}
        self.previous: dict[str, Tensor] = {}
        self.previous_grad: dict[str, Tensor] = {}

    def penalty(self, model: nn.Module) -> Tensor | None:
        """``c Σ_k Ω_k (θ_k - θ*_k)²``, or ``None`` before the first experience ends."""
        term = self.anchor.penalty(model)
        return None if term is None else self.config.weight * term

    def after_backward(self, model: nn.Module) -> None:
        """Add the previous step's ``-g Δθ``; remember this step's θ and g."""
        params = tracked(model)
        if not self.omega:
            self.omega = zeros_like_params(model)
        if not self.start:
            self.start = {n: p.detach().clone() for n, p in params.items()}
        self._accumulate(params)
        self.previous = {n: p.detach().clone() for n, p in params.items()}
        self.previous_grad = {
            n: torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
            for n, p in params.items()
        }

    def _accumulate(self, params: dict[str, nn.Parameter]) -> None:
        for name, p in params.items():
            if name in self.previous:
                change = p.detach() - self.previous[name].to(p.device)
                self.omega[name] -= self.previous_grad[name].to(p.device) * change

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Close the path integral; update Ω; anchor at the current parameters."""
        params = tracked(model)
        if not self.omega:
            return
        self._accumulate(params)
        importance = dict(self.anchor.importance)
        for name, p in params.items():
            total = p.detach() - self.start[name].to(p.device)
            gain = (self.omega[name] / (total.pow(2) + self.config.damping)).clamp_min(0.0)
            importance[name] = importance.get(name, torch.zeros_like(gain)).to(p.device) + gain
        self.anchor.set(importance, model)
        self.omega = zeros_like_params(model)
        self.start = {n: p.detach().clone() for n, p in params.items()}
        self.previous, self.previous_grad = {}, {}

    def state_dict(self) -> dict[str, Tensor]:
        """Ω and θ* (``importance/``, ``anchor/``), ω, the start, the previous step."""
        out = self.anchor.state_dict("")
        for group, values in self._groups().items():
            out.update({f"{group}/{n}": t for n, t in values.items()})
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore everything :meth:`state_dict` saved."""
        self.anchor.load_state_dict(state, "")
        for group in self._groups():
            prefix = f"{group}/"
            values = {k[len(prefix) :]: v.clone() for k, v in state.items() if k.startswith(prefix)}
            setattr(self, group, values)

    def _groups(self) -> dict[str, dict[str, Tensor]]:
        return {
            "omega": self.omega,
            "start": self.start,
            "previous": self.previous,
            "previous_grad": self.previous_grad,
        }
