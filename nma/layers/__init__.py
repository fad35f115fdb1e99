"""Memory layers: any registered memory as an ``nn.Module`` for your own networks.

* :class:`MemoryLayer`: a memory over a whole sequence (time-major or batch-first).
* :class:`RecurrentMemoryLayer`: controller + memory, ``output, state = layer(x, state)``.
* :class:`TransformerMemoryLayer`: a transformer block with a kNN key-value memory
  carried across segments (Memorizing Transformers).
* :class:`GatedMemory`: any memory behind learned write and read gates.
* :class:`AdaptiveMemory`: any memory with usage, its slots growing or shrinking with use.
* :class:`DynamicMemoryLayer`: a memory layer with garbage collection as it runs.

See docs/python-api.md.
"""

from __future__ import annotations

from nma.layers.adaptive import AdaptiveMemory
from nma.layers.dynamic import DynamicMemoryLayer
from nma.layers.gated import GatedMemory, GatedState
from nma.layers.memory_layer import MemoryLayer
from nma.layers.recurrent import RecurrentMemoryLayer
from nma.layers.transformer import TransformerMemoryLayer

__all__ = [
    "AdaptiveMemory",
    "DynamicMemoryLayer",
    "GatedMemory",
    "GatedState",
    "MemoryLayer",
    "RecurrentMemoryLayer",
    "TransformerMemoryLayer",
]
