"""The memories of the Python API are the registered memories under their seed names."""

from __future__ import annotations

import pytest
import torch

import nma.memories as memories
from nma import Memory
from nma.layers import MemoryLayer
from nma.registry import get_registry

DOORS = {
    "MemoryCell": "cell",
    "DynamicMemory": "dnc",
    "AssociativeMemory": "associative",
    "AttentionMemory": "kv",
    "SparseMemory": "sam",
    "HierarchicalMemory": "hierarchical",
}


@pytest.mark.parametrize("name", DOORS)
def test_front_door_is_the_registered_memory(name: str) -> None:
    torch.manual_seed(0)
    memory = getattr(memories, name)(16, 6)
    registered = get_registry().get("memory", DOORS[name])
    assert isinstance(memory, Memory) and type(memory.memory) is registered
    assert memory.config.slots == 16 and memory.config.width == 6
    assert memory.rerunnable == registered.rerunnable
    state = memory.initial_state(2, torch.device("cpu"), torch.float32)
    interface = torch.randn(2, memory.interface_size)
    reads, _ = memory(interface, state)
    expected, _ = memory.memory(interface, memory.memory.initial_state(2, torch.device("cpu"),
                                                                        torch.float32))  # fmt: skip
    assert torch.allclose(reads, expected)
    layer = MemoryLayer(3, memory, batch_first=True)
    assert layer(torch.randn(2, 4, 3)).shape == (2, 4, memory.read_size)


def test_front_doors_pass_options_on() -> None:
    assert memories.MemoryCell().config.slots == 1
    attention = memories.AttentionMemory(32, 8, read_heads=2, hops=2)
    assert attention.config.key_size == 8 and attention.read_size == 16
    dnc = memories.DynamicMemory(32, 8, read_heads=3, addressing="ntm")
    assert dnc.read_size == 24
    assert type(dnc.memory.read_addressing).__name__ == "NTMAddressing"
