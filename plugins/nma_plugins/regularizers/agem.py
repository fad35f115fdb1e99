"""Averaged gradient episodic memory (Chaudhry et al. 2019)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import Batch, Options, Regularizer, concat_batches, select
from nma_plugins.regularizers.projection import agem_project
from nma_plugins.regularizers.samples import (
    batch_from_state,
    batch_state,
    current_gradient,
    first_sequences,
    loss_gradient,
    set_gradient,
)


class AGEMRegularizer(Regularizer):
    """A-GEM: one episodic memory holding ``memory_size`` sequences of every finished
    experience; at every step a reference gradient ``g_ref`` is taken on
    ``sample_size`` sequences drawn uniformly from it, and when ``gᵀ g_ref < 0`` the
    gradient is projected: ``g̃ = g - (gᵀ g_ref / g_refᵀ g_ref) g_ref`` (Chaudhry et
    al. 2019, eq. 11). State: the memory and the sampling generator, in checkpoints.
    """

    class Config(Options):
        memory_size: int = Field(
            64, ge=1, description="Sequences kept from each finished experience."
        )
        sample_size: int = Field(
            64, ge=1, description="Memory sequences drawn for each reference gradient."
        )
        seed: int = Field(0, ge=0, description="Seed of the memory sampling.")

    def __init__(self, config: Config) -> None:
        super().__init__(config)
        self.memory: Batch | None = None
        self.generator = torch.Generator().manual_seed(config.seed)

    def after_backward(self, model: nn.Module) -> None:
        """Project the gradient if it conflicts with the memory's reference gradient."""
        if self.memory is None:
            return
        size = self.memory.inputs.shape[1]
        index = torch.randint(size, (min(self.config.sample_size, size),), generator=self.generator)
        reference = loss_gradient(model, self.task, select(self.memory, index))
        set_gradient(model, agem_project(current_gradient(model), reference))

    def end_experience(self, model: nn.Module, batches: Iterable[Batch]) -> None:
        """Add ``memory_size`` sequences of the finished experience to the memory."""
        new = first_sequences(batches, self.config.memory_size)
        self.memory = new if self.memory is None else concat_batches([self.memory, new])

    def state_dict(self) -> dict[str, Tensor]:
        """``memory/inputs``, ``memory/targets``, ``memory/mask``, ``generator``."""
        out = {"generator": self.generator.get_state()}
        if self.memory is not None:
            out.update(batch_state("memory", self.memory))
        return out

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        """Restore the memory and the generator."""
        self.memory = batch_from_state("memory", state)
        if "generator" in state:
            self.generator.set_state(state["generator"])
