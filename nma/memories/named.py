"""The memories of the Python API, each a front door to a registered memory.

Each takes ``(memory_size, memory_dim, addressing=None, addressing_options=None,
**options)`` (see :class:`~nma.memories.front_door.RegisteredMemory`); the options
and equations are the registered memory's, documented in docs/memories.md.
"""

from __future__ import annotations

from typing import Any

from nma.memories.front_door import RegisteredMemory


class MemoryCell(RegisteredMemory):
    """The simplest gated read/write memory: the ``cell`` memory.

    ``memory_size`` slots (1 by default: a single gated cell) of ``memory_dim``
    values, addressed by location, with a write gate and a read gate.

    Args:
        memory_size: its ``slots``, 1: a single cell.
        memory_dim: its ``width``.
        options: further options of ``cell`` (none besides these).
    """

    registered = "cell"

    def __init__(self, memory_size: int = 1, memory_dim: int = 20, **options: Any) -> None:
        super().__init__(memory_size, memory_dim, **options)


class DynamicMemory(RegisteredMemory):
    """The Differentiable Neural Computer's dynamic external memory: the ``dnc`` memory
    (Graves et al. 2016): allocation by usage, temporal links, content lookup.

    Args:
        memory_size: its ``slots``.
        memory_dim: its ``width``.
        options: further options of ``dnc`` (``read_heads``, ``eps``), and
            ``addressing``, ``addressing_options``.
    """

    registered = "dnc"


class AssociativeMemory(RegisteredMemory):
    """Modern Hopfield / outer-product associative memory: the ``associative`` memory
    (Ramsauer et al. 2020; Kohonen 1972).

    Args:
        memory_size: its ``slots``: stored patterns.
        memory_dim: its ``width``.
        options: further options of ``associative`` (``mode``, ``read_heads``,
            ``iterations``, ``decay``, ...).
    """

    registered = "associative"


class AttentionMemory(RegisteredMemory):
    """Key-value attention memory, multi-head and multi-hop: the ``kv`` memory (Vaswani
    et al. 2017; Sukhbaatar et al. 2015). Keys and values are ``memory_dim`` wide.

    Args:
        memory_size: its ``slots``.
        memory_dim: its ``width`` and ``key_size``.
        options: further options of ``kv`` (``read_heads``, ``hops``, ``eps``).
    """

    registered = "kv"

    def sized_options(self, memory_size: int, memory_dim: int) -> dict[str, Any]:
        """``slots``, and ``width`` = ``key_size`` = ``memory_dim``."""
        return {"slots": memory_size, "width": memory_dim, "key_size": memory_dim}


class SparseMemory(RegisteredMemory):
    """Sparse Access Memory: the ``sam`` memory (Rae et al. 2016): top-K reads and
    writes, an exact or LSH index over the slots.

    Args:
        memory_size: its ``slots``.
        memory_dim: its ``width``.
        options: further options of ``sam`` (``read_heads``, ``sparse_reads``, ``index``, ...).
    """

    registered = "sam"


class HierarchicalMemory(RegisteredMemory):
    """Levels at several time scales with learned routing: the ``hierarchical`` memory.
    ``memory_size`` is the slots of level 0; level ``l`` has ``growth^l`` times as many.

    Args:
        memory_size: its ``slots`` of level 0.
        memory_dim: its ``width``.
        options: further options of ``hierarchical`` (``levels``, ``growth``,
            ``period``, ``read_heads``, ...).
    """

    registered = "hierarchical"
