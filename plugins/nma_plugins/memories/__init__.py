"""First-party memories: ``ntm`` (Graves et al. 2014)."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.memories.ntm import NTMMemory, NTMState

__all__ = ["NTMMemory", "NTMState", "nma_register_memories"]


@hookimpl
def nma_register_memories(register: Register) -> None:
    """Register the Neural Turing Machine memory."""
    register("ntm", NTMMemory)
