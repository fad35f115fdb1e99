"""Assembly of controller + memory + output head into one recurrent model.

At step ``t`` (DESIGN.md, "The five interfaces")::

    h_t, c_t   = controller(x_t ++ r_{t-1}, c_{t-1})    (x_t alone for a memory
                                                      whose reads_to_controller is False)
    r_t, m_t   = memory(W_i h_t, m_{t-1})
    y_t        = W_o (h_t ++ r_t)                     (W_o r_t for a memory whose
                                                      head_sees_controller is False)

``W_i`` maps the controller output to the memory's interface vector and ``W_o``
is the output head; both are linear layers with bias.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from nma.controller import Controller
from nma.errors import UsageError
from nma.memory import Memory
from nma.state import State, map_state
from nma.tied_head import TiedHead


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
        controller: built with ``input_size = task input + memory.fed_reads_size()``.
        memory: any :class:`nma.Memory`.
        output_size: width of one step's output (the task's ``output_size``).
        output_channels: the task's :attr:`nma.Task.output_channels`; needed when the
            memory ties the head to an embedding (:attr:`nma.Memory.output_embedding`),
            the head is then a :class:`nma.tied_head.TiedHead`.

    Raises:
        UsageError: when the memory ties the head but the task has no output channels,
            or the controller does not pass its input through.
    """

    def __init__(
        self,
        controller: Controller,
        memory: Memory,
        output_size: int,
        output_channels: list[list[int]] | None = None,
    ) -> None:
        super().__init__()
        self.controller = controller
        self.memory = memory
        self.interface = nn.Linear(controller.output_size, memory.interface_size)
        memory.init_interface(self.interface)
        self.head: nn.Linear | TiedHead
        if memory.output_embedding is not None:
            self.head = _tied_head(controller, memory, output_size, output_channels)
        else:
            head_inputs = memory.read_size
            if memory.head_sees_controller:
                head_inputs += controller.output_size
            self.head = nn.Linear(head_inputs, output_size)
        self.input_size = controller.input_size - memory.fed_reads_size()
        self.output_size = output_size
        self.memory_prefill: State | None = None
        self.compiled_steps = 0
        """Set by :meth:`compile_runs`: the length of the runs of steps compiled as one graph."""
        self._compiled_run: Callable[..., tuple[Tensor, Tensor, ModelState]] | None = None
        self.recompute_chunk = 0
        """When positive, training keeps only the state at every ``recompute_chunk``-th
        step and recomputes the steps in between during the backward pass (activation
        checkpointing): memory O(T / chunk + chunk) steps instead of O(T)."""

    def compile_runs(self, steps: int = 8, **options: Any) -> None:
        """Compile runs of ``steps`` time steps with :func:`torch.compile`.

        A sequence is cut into runs of ``steps`` steps, each one call of a compiled
        graph (forward and backward) holding all of its steps, and a remainder run
        step by step through a graph of one step: so at most two graphs per batch
        shape, however long the sequences. Longer runs cut per-call overhead and let
        the compiler fuse across steps, at the price of a longer first compilation.

        Args:
            steps: time steps per compiled graph, ``>= 1``.
            options: passed to :func:`torch.compile` (``backend``, ``mode``, ...).
        """
        if steps < 1:
            raise ValueError(f"compiled runs need at least one step, not {steps}")
        self.compiled_steps = steps
        self._compiled_run = torch.compile(self._run_steps, **options)

    def prefill_memory(self, state: State | None) -> None:
        """Start every sequence from this memory state (batch size 1) instead of the
        memory's own initial state: knowledge saved by :func:`nma.save_memory` from
        an earlier run. ``None`` restores the default."""
        self.memory_prefill = state

    def initial_state(
        self, batch_size: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ModelState:
        """The state before the first step."""
        param = self.interface.weight
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

    def cell(self, x: Tensor, state: ModelState) -> tuple[Tensor, ModelState]:
        """One time step without the output head: the controller and the memory.

        Args:
            x: ``(B, input_size)``.
            state: the previous :class:`ModelState`.

        Returns:
            ``(hidden, state)``: the controller output ``(B, controller.output_size)`` and
            the new state, whose ``reads`` are this step's reads.
        """
        feed = self.memory.reads_to_controller
        controller_input = torch.cat([x, state.reads], dim=-1) if feed else x
        hidden, controller_state = self.controller(controller_input, state.controller)
        reads, memory_state = self.memory(self.interface(hidden), state.memory)
        return hidden, ModelState(controller_state, memory_state, reads)

    def step(self, x: Tensor, state: ModelState) -> tuple[Tensor, ModelState]:
        """One time step: ``x`` is ``(B, input_size)``; returns ``((B, output_size), state)``."""
        hidden, state = self.cell(x, state)
        return self._head(hidden, state.reads), state

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
            hiddens, reads, state = self._run_compiled(inputs, state)
        else:
            hidden_chunks, read_chunks = [], []
            for start in range(0, inputs.shape[0], chunk):
                hidden, read, state = checkpoint(
                    self._run_compiled, inputs[start : start + chunk], state, use_reentrant=False
                )
                hidden_chunks.append(hidden)
                read_chunks.append(read)
            hiddens, reads = torch.cat(hidden_chunks), torch.cat(read_chunks)
        # The head is applied to all steps at once: one matrix product, not T.
        return self._head(hiddens, reads), state

    def _head(self, hidden: Tensor, reads: Tensor) -> Tensor:
        """``W_o (h ++ r)``, or ``W_o r`` where the memory's reads alone feed the head
        (:attr:`nma.Memory.head_sees_controller`); ``W_o`` tied to the interface's
        embedding rows where the memory asks for it (:class:`nma.tied_head.TiedHead`)."""
        if isinstance(self.head, TiedHead):
            seen = hidden if self.memory.head_sees_controller else None
            return self.head(reads, seen, self.interface.weight)
        if self.memory.head_sees_controller:
            return self.head(torch.cat([hidden, reads], dim=-1))
        return self.head(reads)

    def _run_compiled(self, inputs: Tensor, state: ModelState) -> tuple[Tensor, Tensor, ModelState]:
        """:meth:`_run` through the compiled graphs of :meth:`compile_runs`, if any."""
        run, steps = self._compiled_run, self.compiled_steps
        if run is None:
            return self._run(inputs, state)
        fused = self._run_fused(inputs, state)
        if fused is not None:
            return fused
        length = inputs.shape[0]
        full = length - length % steps
        cuts = list(range(0, full, steps)) + list(range(full, length))
        hiddens, reads = [], []
        for start in cuts:
            stop = start + steps if start < full else start + 1
            hidden, read, state = run(inputs[start:stop], state)
            hiddens.append(hidden)
            reads.append(read)
        return torch.cat(hiddens), torch.cat(reads), state

    def _run(self, inputs: Tensor, state: ModelState) -> tuple[Tensor, Tensor, ModelState]:
        """Controller outputs ``(T, B, controller.output_size)`` and reads ``(T, B,
        read_size)`` of every step, and the final state."""
        fused = self._run_fused(inputs, state)
        if fused is not None:
            return fused
        return self._run_steps(inputs, state)

    def _run_fused(
        self, inputs: Tensor, state: ModelState
    ) -> tuple[Tensor, Tensor, ModelState] | None:
        """:meth:`_run` through the memory's :meth:`nma.Memory.run_with_controller`,
        while gradients are recorded and the memory offers it; else ``None``."""
        if not (self.memory.reads_to_controller and torch.is_grad_enabled()):
            return None
        if torch.compiler.is_compiling():
            return None
        fused = self.memory.run_with_controller(
            self.controller, self.interface, inputs, state.controller, state.memory, state.reads
        )
        if fused is None:
            return None
        hiddens, reads, controller_state, memory_state = fused
        return hiddens, reads, ModelState(controller_state, memory_state, reads[-1])

    def _run_steps(self, inputs: Tensor, state: ModelState) -> tuple[Tensor, Tensor, ModelState]:
        """:meth:`_run` one step at a time (the compiled graphs trace this)."""
        if not self.memory.reads_to_controller:
            # The interface vectors do not depend on the reads: the controller runs
            # first, then the memory over the whole sequence (run_sequence).
            controller_state, outputs = state.controller, []
            for x in inputs.unbind(0):
                hidden, controller_state = self.controller(x, controller_state)
                outputs.append(hidden)
            hiddens_seq = torch.stack(outputs)
            reads_seq, memory_state = self.memory.run_sequence(
                self.interface(hiddens_seq), state.memory
            )
            return hiddens_seq, reads_seq, ModelState(controller_state, memory_state, reads_seq[-1])
        hiddens, reads = [], []
        for x in inputs.unbind(0):
            hidden, state = self.cell(x, state)
            hiddens.append(hidden)
            reads.append(state.reads)
        return torch.stack(hiddens), torch.stack(reads), state


def _tied_head(
    controller: Controller,
    memory: Memory,
    output_size: int,
    output_channels: list[list[int]] | None,
) -> TiedHead:
    """The head tied to ``memory.output_embedding``, after checking that the tie means
    what it says: input channel ``c`` is column ``c`` of the interface layer only when
    the controller passes its input through unchanged."""
    name = type(memory).__name__
    if output_channels is None or len(output_channels) != output_size:
        raise UsageError(
            f"{name} ties the output head to an input embedding (MemN2N's W^T = C^K), "
            "which needs a task that names the input channels spelling each output class "
            "(Task.output_channels); this task names none. Turn the memory's tie off."
        )
    if not controller.passes_input:
        raise UsageError(
            f"{name} ties the output head to an input embedding (MemN2N's W^T = C^K), "
            f"which needs a controller that passes its input through unchanged (an mlp "
            f"with layers = 0), so that the interface layer embeds the input itself; "
            f"{type(controller).__name__} does not."
        )
    controller_size = controller.output_size if memory.head_sees_controller else 0
    rows = memory.output_embedding
    assert rows is not None
    return TiedHead(output_channels, controller.output_size, rows, controller_size)
