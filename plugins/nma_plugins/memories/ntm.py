"""The Neural Turing Machine's memory: erase/add writes and weighted reads.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401,
sections 3.1 and 3.2. With ``w`` a head's weighting over the ``N`` slots:

    r_t = sum_i w_t(i) M_t(i)                             read          (eq. 2)
    M~_t(i) = M_{t-1}(i) [1 - w_t(i) e_t]                 erase         (eq. 3)
    M_t(i)  = M~_t(i) + w_t(i) a_t                        add           (eq. 4)

and, for several write heads (the remark closing section 3.2: erasures multiply
and additions add, so the order of the heads does not matter):

    M_t = M_{t-1} o prod_h (1 - w_h e_h^T) + sum_h w_h a_h^T

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R``
for read heads, ``Wh`` for write heads and ``P`` for the per-head parameters of
the addressing scheme.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import AddressingFactory, Controller, Memory, Options, State
from nma_plugins.addressing.ntm import NTMAddressing
from nma_plugins.controllers.lstm_sequence import StepKernel, run_lstm_with_memory
from nma_plugins.memories.ntm_step import ntm_step
from nma_plugins.memories.ntm_write import erase_add


class NTMState(NamedTuple):
    """The recurrent state of :class:`NTMMemory` after a step.

    Attributes:
        memory: ``(B, N, W)`` the memory matrix ``M_t``.
        read_weights: ``(B, R, N)`` the read heads' weightings of this step.
        write_weights: ``(B, Wh, N)`` the write heads' weightings of this step.
    """

    memory: Tensor
    read_weights: Tensor
    write_weights: Tensor


class NTMMemory(Memory):
    """The memory of a Neural Turing Machine (Graves et al. 2014, sections 3.1-3.3).

    One addressing module (``ntm`` by default) weights all heads in a single call;
    the write heads come first, then the read heads. Both are addressed against the
    previous memory ``M_{t-1}``: this step's writes are then applied, and the read
    heads read the new memory ``M_t`` with the weightings computed before it, so a
    read at step ``t`` sees what was written at step ``t``.

    Interface layout, per step and per batch element (``interface_size`` values)::

        [ head_0 | head_1 | ... | head_{Wh+R-1} | write_0 | ... | write_{Wh-1} ]

        head_h   P = addressing.params_size values, in the order of
                 ``addressing.params`` (for ``ntm``: key W, strength 1, gate 1,
                 shift 2R'+1, sharpen 1); heads 0..Wh-1 are the write heads,
                 heads Wh..Wh+R-1 the read heads
        write_h  2W values: the erase vector (W, through a sigmoid, in [0, 1]),
                 then the add vector (W, through tanh, in [-1, 1])

    so ``interface_size = (Wh + R) P + 2 Wh W``. A step returns the ``R`` read
    vectors concatenated, ``read_size = R W``.

    Args:
        config: an :class:`NTMMemory.Config`.
        addressing: a factory ``factory(width, heads)`` for the addressing scheme.

    Raises:
        ValueError: when ``addressing`` is ``None``.
    """

    class Config(Options):
        """Options of the NTM memory."""

        slots: int = Field(128, ge=1, description="N: the number of memory slots (rows).")
        width: int = Field(20, ge=1, description="W: the width of one slot (columns).")
        read_heads: int = Field(1, ge=1, description="R: read heads, each returns W values.")
        write_heads: int = Field(
            1,
            ge=1,
            description="Wh: write heads; their erasures multiply, their additions add.",
        )

    default_addressing = "ntm"
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is None:
            raise ValueError("NTMMemory needs an addressing scheme (the default is 'ntm').")
        slots, width = config.slots, config.width
        self.slots = slots
        self.width = width
        self.read_heads = config.read_heads
        self.write_heads = config.write_heads
        self.heads = self.read_heads + self.write_heads
        self.addressing = addressing(width, self.heads)
        self.head_size = self.addressing.params_size
        self.interface_size = self.heads * self.head_size + 2 * self.write_heads * width
        self.read_size = self.read_heads * width
        # Learned initial memory M_0, (N, W); uniform(-b, b) with b = 1 / sqrt(N + W).
        bound = 1.0 / math.sqrt(slots + width)
        self.memory_init = nn.Parameter(torch.empty(slots, width).uniform_(-bound, bound))

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> NTMState:
        """The state before the first step.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            An :class:`NTMState`: ``memory`` ``(B, N, W)`` is the learned ``memory_init``
            repeated over the batch (an expanded view; gradients reach
            ``memory_init``); ``read_weights`` ``(B, R, N)`` and ``write_weights``
            ``(B, Wh, N)`` are one-hot on slot 0.
        """
        memory = self.memory_init.to(device=device, dtype=dtype)
        memory = memory.unsqueeze(0).expand(batch_size, self.slots, self.width)
        one_hot = torch.zeros(self.slots, device=device, dtype=dtype)
        one_hot.narrow(0, 0, 1).fill_(1)  # a kernel, not a host copy: CUDA-graph safe
        read_weights = one_hot.expand(batch_size, self.read_heads, self.slots).clone()
        write_weights = one_hot.expand(batch_size, self.write_heads, self.slots).clone()
        return NTMState(memory, read_weights, write_weights)

    def forward(self, interface: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        """Address all heads, write (eqs. 3-4), then read (eq. 2).

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`NTMState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)`` are the read vectors of the heads
            concatenated; ``state`` is the new :class:`NTMState`.
        """
        addressing = self._fused_addressing()
        if addressing is not None:
            reads, memory, read_weights, write_weights = ntm_step(
                interface,
                state.memory,
                state.write_weights,
                state.read_weights,
                self.width,
                addressing.params["shift"],
                addressing.config.eps,
            )
            return reads, NTMState(memory, read_weights, write_weights)
        return self.forward_reference(interface, state)

    def _fused_addressing(self) -> NTMAddressing | None:
        """The addressing when it is ``ntm`` with a shift range the fused step takes."""
        addressing = self.addressing
        if type(addressing) is NTMAddressing and addressing.config.shift_range <= self.slots:
            return addressing
        return None

    def run_with_controller(
        self,
        controller: Controller,
        interface: nn.Linear,
        inputs: Tensor,
        controller_state: State,
        state: State,
        reads: Tensor,
    ) -> tuple[Tensor, Tensor, State, State] | None:
        """With a one-layer ``lstm`` controller and the ``ntm`` addressing, on the CPU
        kernels: the whole sequence as one autograd node
        (:mod:`nma_plugins.controllers.lstm_sequence`); else ``None`` (step by step)."""
        addressing = self._fused_addressing()
        if addressing is None or not isinstance(state, NTMState):
            return None
        kernel = StepKernel(0, (addressing.params["shift"], addressing.config.eps))
        return run_lstm_with_memory(
            controller, interface, kernel, inputs, controller_state, state, reads
        )

    def forward_reference(self, interface: Tensor, state: NTMState) -> tuple[Tensor, NTMState]:
        """:meth:`forward` through the composable modules, recorded by autograd.

        :meth:`forward` runs the same step as one fused node (:mod:`.ntm_step`) when
        the addressing is ``ntm``; this is the path every other scheme takes, and the
        reference the fused step is tested against.
        """
        batch = interface.shape[0]
        heads_end = self.heads * self.head_size
        raw_heads = interface[:, :heads_end].reshape(batch, self.heads, self.head_size)
        params = self.addressing.split(raw_heads)  # {name: (B, Wh + R, size)}
        raw_write = interface[:, heads_end:].reshape(batch, self.write_heads, 2 * self.width)
        erase = torch.sigmoid(raw_write[..., : self.width])  # (B, Wh, W)
        add = torch.tanh(raw_write[..., self.width :])  # (B, Wh, W)

        prev_weights = torch.cat([state.write_weights, state.read_weights], dim=1)
        weights = self.addressing(params, state.memory, prev_weights)  # (B, Wh + R, N)
        write_weights = weights[:, : self.write_heads]  # (B, Wh, N)
        read_weights = weights[:, self.write_heads :]  # (B, R, N)

        # Write, eqs. (3)-(4) with section 3.2's rule for several heads.
        memory, _ = erase_add(state.memory, write_weights, erase, add)  # (B, N, W)

        # Read, eq. (2), from the memory just written.
        reads = torch.matmul(read_weights, memory)  # (B, R, W)
        return reads.reshape(batch, self.read_size), NTMState(memory, read_weights, write_weights)

    def inspect(self, state: NTMState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            ``{"read_weights": (B, R, N), "write_weights": (B, Wh, N),
            "memory": (B, N, W)}``.
        """
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "memory": state.memory,
        }
