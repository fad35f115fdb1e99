"""Quadratic anchoring, the common form of EWC, online EWC, SI and MAS:
``penalty = λ Σ_i Ω_i (θ_i - θ*_i)²``, with importances ``Ω`` and anchors ``θ*``."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nma_plugins.regularizers.samples import tracked


class Anchor:
    """Importances and anchors, one tensor each per parameter name."""

    def __init__(self) -> None:
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def __bool__(self) -> bool:
        return bool(self.importance)

    def set(self, importance: dict[str, Tensor], model: nn.Module) -> None:
        """Importances ``importance``, anchored at the model's current parameters."""
        self.importance = {n: t.detach().clone() for n, t in importance.items()}
        self.anchor = {n: p.detach().clone() for n, p in tracked(model).items()}

    def penalty(self, model: nn.Module) -> Tensor | None:
        """``Σ_i Ω_i (θ_i - θ*_i)²`` (without λ), or ``None`` before any anchor."""
        if not self.importance:
            return None
        total: Tensor | None = None
        for name, p in tracked(model).items():
            if name not in self.importance:
                continue
            omega = self.importance[name].to(p.device)
            term = (omega * (p - self.anchor[name].to(p.device)).pow(2)).sum()
            total = term if total is None else total + term
        return total

    def state_dict(self, prefix: str) -> dict[str, Tensor]:
        """Checkpoint tensors under ``prefix``."""
        out = {f"{prefix}importance/{n}": t for n, t in self.importance.items()}
        out.update({f"{prefix}anchor/{n}": t for n, t in self.anchor.items()})
        return out

    def load_state_dict(self, state: dict[str, Tensor], prefix: str) -> None:
        """Restore what :meth:`state_dict` saved under ``prefix``."""
        self.importance = _under(state, f"{prefix}importance/")
        self.anchor = _under(state, f"{prefix}anchor/")


def _under(state: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix) :]: v.clone() for k, v in state.items() if k.startswith(prefix)}


def zeros_like_params(model: nn.Module) -> dict[str, Tensor]:
    """A zero tensor per tracked parameter."""
    return {
        n: torch.zeros_like(p, memory_format=torch.contiguous_format)
        for n, p in tracked(model).items()
    }
