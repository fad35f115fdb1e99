"""Assembly of controller + memory + output head into one recurrent model.

At step ``t`` (DESIGN.md, "The five interfaces")::

    h_t, c_t   = controller(x_t ++ r_{t-1}, c_{t-1})
    r_t, m_t   = memory(W_i h_t, m_{t-1})
    y_t        = W_o (h_t ++ r_t)

``W_i`` maps the controller output to the memory's interface vector and ``W_o``
is the output head; both are linear layers with bias.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from nma.controller import Controller
from nma.memory import Memory
from nma.state import State, map_state


class ModelState(NamedTuple):
    """Recurrent state of a :class:`MemoryModel`.

    Attributes:
        controller: the controller's state.
        memory: the memory's state.
        reads: ``(B, read_size)`` the memory's reads of the previous step.
    """

    controller: State
    memory: State
    reads: Tensor


class MemoryModel(nn.Module):
    """A controller driving an external memory, with a linear output head.

    Args:
        controller: built with ``input_size = task input + memory.read_size``.
        memory: any :class:`nma.Memory`.
        output_size: width of one step's output (the task's ``output_size``).
    """

    def __init__(self, controller: Controller, memory: Memory, output_size: int) -> None:
        super().__init__()
        self.controller = controller
        self.memory = memory
        self.interface = nn.Linear(controller.output_size, memory.interface_size)
        self.head = nn.Linear(controller.output_size + memory.read_size, output_size)
        self.input_size = controller.input_size - memory.read_size
        self.output_size = output_size
        self.memory_prefill: State | None = None
        self.recompute_chunk = 0
        """When positive, training keeps only the state at every ``recompute_chunk``-th
        step and recomputes the steps in between during the backward pass (activation
        checkpointing): memory O(T / chunk + chunk) steps instead of O(T)."""

    def prefill_memory(self, state: State | None) -> None:
        """Start every sequence from this memory state (batch size 1) instead of the
        memory's own initial state: knowledge saved by :func:`nma.save_memory` from
        an earlier run. ``None`` restores the default."""
        self.memory_prefill = state

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ModelState:
        """The state before the first step."""
        param = self.head.weight
        device = device if device is not None else param.device
        dtype = dtype if dtype is not None else param.dtype
        if self.memory_prefill is None:
            memory = self.memory.initial_state(batch_size, device, dtype)
        else:
            memory = map_state(
                lambda t: (
                    t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)
                    .expand(batch_size, *t.shape[1:])
                    .clone()
                ),
                self.memory_prefill,
            )
        return ModelState(
            controller=self.controller.initial_state(batch_size, device, dtype),
            memory=memory,
            reads=torch.zeros(batch_size, self.memory.read_size, device=device, dtype=dtype),
        )

    def step(self, x: Tensor, state: ModelState) -> tuple[Tensor, ModelState]:
        """One time step: ``x`` is ``(B, input_size)``; returns ``((B, output_size), state)``."""
        controller_input = torch.cat([x, state.reads], dim=-1)
        hidden, controller_state = self.controller(controller_input, state.controller)
        reads, memory_state = self.memory(self.interface(hidden), state.memory)
        output = self.head(torch.cat([hidden, reads], dim=-1))
        return output, ModelState(controller_state, memory_state, reads)

    def forward(self, inputs: Tensor, state: ModelState | None = None) -> tuple[Tensor, ModelState]:
        """Run a whole sequence.

        Args:
            inputs: ``(T, B, input_size)``, time-major.
            state: the state to start from; the initial state if ``None``.

        Returns:
            ``(outputs, state)``: ``(T, B, output_size)`` and the final state.
        """
        if state is None:
            state = self.initial_state(inputs.shape[1], inputs.device, inputs.dtype)
        chunk = self.recompute_chunk
        if chunk <= 0 or not (self.training and torch.is_grad_enabled()):
            return self._run(inputs, state)
        outputs = []
        for start in range(0, inputs.shape[0], chunk):
            output, state = checkpoint(
                self._run, inputs[start : start + chunk], state, use_reentrant=False
            )
            outputs.append(output)
        return torch.cat(outputs), state

    def _run(self, inputs: Tensor, state: ModelState) -> tuple[Tensor, ModelState]:
        outputs = []
        for x in inputs.unbind(0):
            output, state = self.step(x, state)
            outputs.append(output)
        return torch.stack(outputs), state
