"""Online EWC (Schwarz et al. 2018, "Progress & Compress"; Huszár 2018)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer
from nma_plugins.regularizers.anchors import Anchor
from nma_plugins.regularizers.fisher import diagonal_fisher


class OnlineEWCRegularizer(Regularizer):
    """Online EWC: one running Fisher, decayed by γ at each new experience, and one
    anchor, the parameters after the latest experience:

        F̃^k = γ F̃^{k-1} + F^k,     L = L_task + λ Σ_i F̃^k_i (θ_i - θ*^k_i)²

    (Schwarz et al. 2018, their online EWC penalty, with λ/2 written λ). Memory stays
    constant however many experiences pass; ``gamma = 1`` sums the Fishers.
    """

    class Config(Options):
        weight: float = Field(100.0, ge=0, description="λ, the strength of the penalty.")
        gamma: float = Field(
            1.0, ge=0, le=1, description="γ, the decay of the running Fisher per experience."
        )
        samples: int = Field(
            200,
            ge=1,
            description="Sequences of the finished experience the Fisher is averaged over.",
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.anchor = Anchor()

    def penalty(self, model: nn.Module) -> Tensor | None:
        """``λ Σ_i F̃_i (θ_i - θ*_i)²``, or ``None`` before the first experience ends."""
        term = self.anchor.penalty(model)
        return None if term is None else self.config.weight * term

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Decay the running Fisher, add the finished experience's, re-anchor."""
        fisher = diagonal_fisher(model, self.task, batches, self.config.samples)
        for name, old in self.anchor.importance.items():
            fisher[name] = fisher[name] + self.config.gamma * old.to(fisher[name].device)
        self.anchor.set(fisher, model)

    def state_dict(self) -> dict[str, Tensor]:
        """``importance/NAME`` (F̃) and ``anchor/NAME`` (θ*)."""
        return self.anchor.state_dict("")

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the running Fisher and the anchor."""
        self.anchor.load_state_dict(state, "")
