"""Elastic weight consolidation (Kirkpatrick et al. 2017)."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer
from nma_plugins.regularizers.anchors import Anchor
from nma_plugins.regularizers.fisher import diagonal_fisher


class EWCRegularizer(Regularizer):
    """EWC: after each experience ``k``, the diagonal Fisher ``F^k`` of its data
    (:func:`nma_plugins.regularizers.fisher.diagonal_fisher`) and the parameters
    ``θ*^k`` are kept; later training adds

        L = L_task + λ Σ_k Σ_i F^k_i (θ_i - θ*^k_i)²

    one quadratic term per finished experience (Kirkpatrick et al. 2017, eq. 3, with
    its λ/2 written λ, and the per-task penalties of its §2.1 for more than two
    tasks). State: every experience's Fisher and anchor, in checkpoints.
    """

    class Config(Options):
        weight: float = Field(100.0, ge=0, description="λ, the strength of the penalty.")
        samples: int = Field(
            200,
            ge=1,
            description="Sequences of the finished experience the Fisher is averaged over.",
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.anchors: list[Anchor] = []

    def penalty(self, model: nn.Module) -> Tensor | None:
        """``λ Σ_k Σ_i F^k_i (θ_i - θ*^k_i)²``, or ``None`` before the first experience ends."""
        terms = [t for t in (a.penalty(model) for a in self.anchors) if t is not None]
        if not terms:
            return None
        return self.config.weight * sum(terms[1:], terms[0])

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Add the finished experience's Fisher and anchor."""
        anchor = Anchor()
        anchor.set(diagonal_fisher(model, self.task, batches, self.config.samples), model)
        self.anchors.append(anchor)

    def state_dict(self) -> dict[str, Tensor]:
        """``k/importance/NAME`` (``F^k``) and ``k/anchor/NAME`` (``θ*^k``)."""
        out: dict[str, Tensor] = {}
        for k, anchor in enumerate(self.anchors):
            out.update(anchor.state_dict(f"{k}/"))
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the anchors."""
        count = len({key.split("/", 1)[0] for key in state})
        self.anchors = []
        for k in range(count):
            anchor = Anchor()
            anchor.load_state_dict(state, f"{k}/")
            self.anchors.append(anchor)
