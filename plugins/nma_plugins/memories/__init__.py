"""First-party memories; docs/memories.md describes each."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.memories.associative import AssociativeMemory
from nma_plugins.memories.cell import MemoryCellMemory
from nma_plugins.memories.dnc import DNCMemory
from nma_plugins.memories.hierarchical import HierarchicalMemory
from nma_plugins.memories.kv import KVMemory
from nma_plugins.memories.lrua import LRUAMemory
from nma_plugins.memories.neural import NeuralMemory
from nma_plugins.memories.ntm import NTMMemory, NTMState
from nma_plugins.memories.sam import SAMMemory
from nma_plugins.memories.sdnc import SparseDNCMemory

__all__ = ["NTMMemory", "NTMState", "nma_register_memories"]


@hookimpl
def nma_register_memories(register: Register) -> None:
    """Register the first-party memories."""
    register("ntm", NTMMemory)
    register("sam", SAMMemory)
    register("dnc", DNCMemory)
    register("sdnc", SparseDNCMemory)
    register("lrua", LRUAMemory)
    register("kv", KVMemory)
    register("associative", AssociativeMemory)
    register("hierarchical", HierarchicalMemory)
    register("neural", NeuralMemory)
    register("cell", MemoryCellMemory)
