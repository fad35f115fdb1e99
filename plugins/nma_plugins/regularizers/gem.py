"""Gradient episodic memory (Lopez-Paz & Ranzato 2017)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer
from nma_plugins.regularizers.projection import gem_project
from nma_plugins.regularizers.samples import (
    batch_from_state,
    batch_state,
    current_gradient,
    first_sequences,
    loss_gradient,
    set_gradient,
)


class GEMRegularizer(Regularizer):
    """GEM: an episodic memory of ``memory_size`` sequences per finished experience;
    at every step, the gradient ``g`` is projected so that the loss on no memory
    rises: ``⟨g̃, g_k⟩ ≥ 0`` for each memory's gradient ``g_k``, with ``g̃`` the
    closest such vector to ``g`` (Lopez-Paz & Ranzato 2017, eqs. 10–13; see
    :func:`nma_plugins.regularizers.projection.gem_project`). The memories' losses
    are the task's own. State: the memories, in checkpoints.
    """

    class Config(Options):
        memory_size: int = Field(
            64, ge=1, description="Sequences kept from each finished experience."
        )
        margin: float = Field(
            0.0, ge=0, description="Lower bound of the dual variables (0: the exact projection)."
        )

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.memories: list[Batch] = []

    def after_backward(self, model: nn.Module) -> None:
        """Project the gradient against every memory's gradient."""
        if not self.memories:
            return
        g = current_gradient(model)
        constraints = torch.stack([loss_gradient(model, self.task, m) for m in self.memories])
        set_gradient(model, gem_project(g, constraints, self.config.margin))

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Keep ``memory_size`` sequences of the finished experience."""
        self.memories.append(first_sequences(batches, self.config.memory_size))

    def state_dict(self) -> dict[str, Tensor]:
        """``k/inputs``, ``k/targets``, ``k/mask`` of each memory ``k``."""
        out: dict[str, Tensor] = {}
        for k, memory in enumerate(self.memories):
            out.update(batch_state(str(k), memory))
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the memories."""
        self.memories = []
        while (memory := batch_from_state(str(len(self.memories)), state)) is not None:
            self.memories.append(memory)
