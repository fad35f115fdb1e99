"""Memories by name: thin front doors to the registered memories.

========================  ==================  =====================================
class                     registered memory   what it is
========================  ==================  =====================================
``MemoryCell``            ``cell``            gated read/write slots by location
``DynamicMemory``         ``dnc``             DNC memory: allocation, temporal links
``AssociativeMemory``     ``associative``     modern Hopfield / outer-product
``AttentionMemory``       ``kv``              key-value attention, multi-hop
``SparseMemory``          ``sam``             Sparse Access Memory
``HierarchicalMemory``    ``hierarchical``    levels at several time scales
========================  ==================  =====================================

Each is an :class:`nma.Memory`: step it yourself, or give it to a layer of
:mod:`nma.layers` or a model of :mod:`nma.models`.
"""

from __future__ import annotations

from nma.memories.front_door import RegisteredMemory
from nma.memories.named import (
    AssociativeMemory,
    AttentionMemory,
    DynamicMemory,
    HierarchicalMemory,
    MemoryCell,
    SparseMemory,
)

__all__ = [
    "AssociativeMemory",
    "AttentionMemory",
    "DynamicMemory",
    "HierarchicalMemory",
    "MemoryCell",
    "RegisteredMemory",
    "SparseMemory",
]
