"""The random state a ``DataLoader``'s order depends on, so that a resumed training
sees the same batches as an uninterrupted one.

A shuffling loader draws its order (and its workers' seeds) when an epoch starts,
from its ``generator`` (or its sampler's), or from the global generator when it has
none. Saving those states at the start of an epoch, restoring them, and skipping the
batches already used reproduces the epoch exactly. A validation loader's generators
are saved as they are at the checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nma.loop import rng_states, set_rng_states

PREFIX = "epoch-start/"


def loader_generators(loader: Any) -> list[torch.Generator]:
    """The generators ``loader`` draws from: its own, its sampler's, its batch
    sampler's sampler's (each once)."""
    candidates = [
        getattr(loader, "generator", None),
        getattr(getattr(loader, "sampler", None), "generator", None),
        getattr(
            getattr(getattr(loader, "batch_sampler", None), "sampler", None), "generator", None
        ),
    ]
    found: list[torch.Generator] = []
    for gen in candidates:
        if isinstance(gen, torch.Generator) and all(gen is not g for g in found):
            found.append(gen)
    return found


def generator_states(loader: Any, prefix: str) -> dict[str, Tensor]:
    """The states of ``loader``'s generators, as ``{prefix}loader-{i}``."""
    return {f"{prefix}loader-{i}": g.get_state() for i, g in enumerate(loader_generators(loader))}


def restore_generators(states: dict[str, Tensor], loader: Any, prefix: str) -> None:
    """Set ``loader``'s generators to what :func:`generator_states` saved."""
    for i, gen in enumerate(loader_generators(loader)):
        key = f"{prefix}loader-{i}"
        if key in states:
            gen.set_state(states[key])


def epoch_start_states(loader: Any, device: torch.device) -> dict[str, Tensor]:
    """The global generators' and the loader's generators' states, under :data:`PREFIX`."""
    states = {f"{PREFIX}{k}": v for k, v in rng_states(device).items()}
    states.update(generator_states(loader, PREFIX))
    return states


def restore_epoch_start(states: dict[str, Tensor], loader: Any, device: torch.device) -> None:
    """Set the generators back to what :func:`epoch_start_states` saved."""
    set_rng_states(states, device, PREFIX)
    restore_generators(states, loader, PREFIX)
