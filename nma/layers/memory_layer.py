"""``MemoryLayer``: a registered memory run over a whole sequence, as one ``nn.Module``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from nma.layers.components import MemorySpec, resolve_memory, to_time_major
from nma.state import State


class MemoryLayer(nn.Module):
    """Any memory over a sequence: a linear map to its interface, then one step per time step.

    At every step ``t``: ``r_t, m_t = memory(W x_t + b, m_{t-1})``. The interface
    vectors of all steps are computed at once (nothing recurrent feeds them); the
    memory is stepped in order.

    Args:
        input_size: ``F``, the width of one step's input.
        memory: a registered memory's name (``"ntm"``, ``"dnc"``, ...; ``nma
            list-plugins``) or a built :class:`nma.Memory` (a front door of
            :mod:`nma.memories`, :class:`~nma.layers.GatedMemory`, a plugin's class).
        memory_options: the memory's options when ``memory`` is a name
            (``{"slots": 64, "width": 16}``); defaults for the rest.
        addressing: the addressing scheme when ``memory`` is a name and takes one.
        addressing_options: that scheme's options.
        batch_first: inputs and reads are ``(B, T, ...)`` instead of ``(T, B, ...)``.

    Attributes:
        memory: the :class:`nma.Memory`.
        interface: ``nn.Linear(input_size, memory.interface_size)``.
        output_size: ``memory.read_size``, the width of one step's reads.
    """

    def __init__(
        self,
        input_size: int,
        memory: MemorySpec = "ntm",
        memory_options: dict[str, Any] | None = None,
        addressing: str | None = None,
        addressing_options: dict[str, Any] | None = None,
        batch_first: bool = False,
    ) -> None:
        super().__init__()
        self.memory = resolve_memory(memory, memory_options, addressing, addressing_options)
        self.interface = nn.Linear(input_size, self.memory.interface_size)
        self.input_size = input_size
        self.output_size = self.memory.read_size
        self.batch_first = batch_first

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> State:
        """The memory's state before the first step (on the layer's device and dtype)."""
        device = device if device is not None else self.interface.weight.device
        dtype = dtype if dtype is not None else self.interface.weight.dtype
        return self.memory.initial_state(batch_size, device, dtype)

    def forward(
        self, inputs: Tensor, state: State = None, return_state: bool = False
    ) -> Tensor | tuple[Tensor, State]:
        """Run the memory over a sequence.

        Args:
            inputs: ``(T, B, F)``, or ``(B, T, F)`` when ``batch_first``.
            state: the memory state to start from; its initial state if ``None``.
            return_state: also return the final state.

        Returns:
            The reads ``(T, B, read_size)`` (``(B, T, read_size)`` when
            ``batch_first``), and the final state when ``return_state``.
        """
        interfaces = self.interface(to_time_major(inputs, self.batch_first))  # (T, B, I)
        if state is None:
            state = self.initial_state(interfaces.shape[1], interfaces.device, interfaces.dtype)
        reads, state = self.run(interfaces, state)
        reads = to_time_major(reads, self.batch_first)
        return (reads, state) if return_state else reads

    def run(self, interfaces: Tensor, state: State) -> tuple[Tensor, State]:
        """Step the memory over time-major interface vectors ``(T, B, interface_size)``;
        returns the reads ``(T, B, read_size)`` and the final state."""
        reads = []
        for interface in interfaces.unbind(0):
            read, state = self.memory(interface, state)
            reads.append(read)
        return torch.stack(reads), state
