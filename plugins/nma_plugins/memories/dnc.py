"""The Differentiable Neural Computer's memory: allocation, temporal links, three read modes.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic external
memory", Nature 538, 471-476, Methods. Per step, with the interface vector split and
constrained as in "Interface parameters" (``oneplus(x) = 1 + log(1 + e^x)``):

    C(M, k, beta)[i] = softmax_i(beta D(k, M[i]))        content lookup, D = cosine
                                                         ("Content-based addressing")
    psi_t, u_t, a_t                                      retention, usage, allocation
                                                         ("Dynamic memory allocation";
                                                         see dnc_allocation.py)
    c^w_t = C(M_{t-1}, k^w_t, beta^w_t)
    w^w_t = g^w_t (g^a_t a_t + (1 - g^a_t) c^w_t)         write weighting
    M_t   = M_{t-1} o (E - w^w_t e_t^T) + w^w_t v_t^T     write ("Reading and writing")
    p_t, L_t, f^i_t, b^i_t                               precedence, temporal link,
                                                         forward, backward
                                                         ("Temporal memory linkage";
                                                         see dnc_linkage.py)
    c^{r,i}_t = C(M_t, k^{r,i}_t, beta^{r,i}_t)
    w^{r,i}_t = pi^i_t[1] b^i_t + pi^i_t[2] c^{r,i}_t + pi^i_t[3] f^i_t   read weighting
    r^i_t     = M_t^T w^{r,i}_t                           read vectors

``E`` is the all-ones ``N x W`` matrix and ``o`` the elementwise product.

The content lookups ``C`` go through the addressing scheme the user picks
(``--addressing``, ``content`` by default): one module for the ``R`` read heads and
one for the write head, built by the same factory. The DNC's key strengths are at
least 1 (``oneplus``): the scheme maps a parameter named ``strength`` through
softplus (``content`` and ``ntm`` do), and this memory adds 1 to it. Schemes that use
the previous weightings (``ntm``) receive the heads' own previous weightings.

With ``content`` addressing, :meth:`DNCMemory.forward` runs the whole step as one
autograd node with a hand-written backward pass (:mod:`.dnc_step`) instead of some 110
operations recorded by autograd; :meth:`DNCMemory.forward_reference`, the composable
path above, serves every other scheme and is the reference the fused step is tested
against.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R`` for
read heads and ``P`` for the per-head parameters of the addressing scheme.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import AddressingFactory, Controller, Memory, Options, State
from nma_plugins.addressing.content import ContentAddressing
from nma_plugins.controllers.lstm_sequence import StepKernel, run_lstm_with_memory
from nma_plugins.memories.dnc_allocation import allocation_weighting, retention, update_usage
from nma_plugins.memories.dnc_linkage import (
    directional_weightings,
    update_link,
    update_precedence,
)
from nma_plugins.memories.dnc_step import dnc_step


class DNCState(NamedTuple):
    """The recurrent state of :class:`DNCMemory` after a step.

    Attributes:
        memory: ``(B, N, W)`` the memory matrix ``M_t``.
        usage: ``(B, N)`` the usage ``u_t`` in ``[0, 1]``.
        link: ``(B, N, N)`` the temporal link matrix ``L_t``, zero diagonal.
        precedence: ``(B, N)`` the precedence weighting ``p_t``.
        read_weights: ``(B, R, N)`` the read weightings ``w^{r,i}_t``.
        write_weights: ``(B, 1, N)`` the write weighting ``w^w_t``.
    """

    memory: Tensor
    usage: Tensor
    link: Tensor
    precedence: Tensor
    read_weights: Tensor
    write_weights: Tensor


class DNCInterface(NamedTuple):
    """One step's interface vector, split and constrained (Methods, "Interface parameters").

    Attributes:
        read_params: ``{name: (B, R, size)}`` the read heads' addressing parameters
            (for ``content``: ``key`` ``k^{r,i}`` and ``strength`` ``beta^{r,i} >= 1``).
        write_params: ``{name: (B, 1, size)}`` the write head's addressing parameters.
        erase: ``(B, W)`` erase vector ``e_t`` in ``(0, 1)`` (sigmoid).
        write_vector: ``(B, W)`` write vector ``v_t`` (unconstrained).
        free_gates: ``(B, R)`` free gates ``f^i_t`` in ``(0, 1)`` (sigmoid).
        allocation_gate: ``(B, 1)`` ``g^a_t`` in ``(0, 1)`` (sigmoid).
        write_gate: ``(B, 1)`` ``g^w_t`` in ``(0, 1)`` (sigmoid).
        read_modes: ``(B, R, 3)`` ``pi^i_t`` (softmax): backward, content, forward.
    """

    read_params: dict[str, Tensor]
    write_params: dict[str, Tensor]
    erase: Tensor
    write_vector: Tensor
    free_gates: Tensor
    allocation_gate: Tensor
    write_gate: Tensor
    read_modes: Tensor


def oneplus_strength(params: dict[str, Tensor]) -> dict[str, Tensor]:
    """Add 1 to a ``strength`` parameter: softplus (from the scheme) + 1 = ``oneplus``.

    Args:
        params: ``{name: (B, H, size)}`` constrained addressing parameters.

    Returns:
        The same dict with ``strength`` (if present) increased by 1.
    """
    if "strength" not in params:
        return params
    return {**params, "strength": params["strength"] + 1}


def write_weighting(
    allocation: Tensor, content: Tensor, allocation_gate: Tensor, write_gate: Tensor
) -> Tensor:
    """Write weighting ``w^w_t = g^w_t (g^a_t a_t + (1 - g^a_t) c^w_t)``.

    Args:
        allocation: ``(B, N)`` allocation weighting ``a_t``.
        content: ``(B, N)`` write content weighting ``c^w_t``.
        allocation_gate: ``(B, 1)`` ``g^a_t``.
        write_gate: ``(B, 1)`` ``g^w_t``.

    Returns:
        ``(B, N)`` the write weighting, non-negative, summing to at most 1.
    """
    return write_gate * (allocation_gate * allocation + (1 - allocation_gate) * content)


def write_memory(memory: Tensor, write_weights: Tensor, erase: Tensor, values: Tensor) -> Tensor:
    """Erase then add: ``M_t = M_{t-1} o (E - w^w_t e_t^T) + w^w_t v_t^T``.

    Args:
        memory: ``(B, N, W)`` the previous memory ``M_{t-1}``.
        write_weights: ``(B, N)`` the write weighting ``w^w_t``.
        erase: ``(B, W)`` the erase vector ``e_t``.
        values: ``(B, W)`` the write vector ``v_t``.

    Returns:
        ``(B, N, W)`` the new memory ``M_t``.
    """
    w = write_weights.unsqueeze(-1)  # (B, N, 1)
    return memory * (1 - w * erase.unsqueeze(-2)) + w * values.unsqueeze(-2)


def read_weighting(backward: Tensor, content: Tensor, forward: Tensor, modes: Tensor) -> Tensor:
    """Read weighting ``w^{r,i}_t = pi^i[1] b^i_t + pi^i[2] c^{r,i}_t + pi^i[3] f^i_t``.

    Args:
        backward: ``(B, R, N)`` backward weightings ``b^i_t``.
        content: ``(B, R, N)`` read content weightings ``c^{r,i}_t``.
        forward: ``(B, R, N)`` forward weightings ``f^i_t``.
        modes: ``(B, R, 3)`` read modes ``pi^i_t`` (backward, content, forward).

    Returns:
        ``(B, R, N)`` read weightings, non-negative, each summing to at most 1.
    """
    return modes[..., 0:1] * backward + modes[..., 1:2] * content + modes[..., 2:3] * forward


class DNCMemory(Memory):
    """The memory of a Differentiable Neural Computer (Graves et al. 2016, Methods).

    Each step: usage and allocation from the previous weightings, the write weighting
    (allocation or content), erase-and-add write, precedence and temporal link update,
    then ``R`` read heads mixing backward, content and forward weightings, read from
    the memory just written.

    Interface layout, per step and per batch element (``interface_size`` values), in
    the order of the Methods' interface vector ``xi_t``::

        [ read_0 | ... | read_{R-1} | write_head | erase | write_vector | free_gates
          | allocation_gate | write_gate | read_modes ]

        read_h        Pr values: read head h's addressing parameters, in the order of
                      ``read_addressing.params`` (``content``: key W, strength 1)
        write_head    Pw values: the write head's addressing parameters
        erase         W values, sigmoid                     e_t
        write_vector  W values, unconstrained               v_t
        free_gates    R values, sigmoid                     f^1_t .. f^R_t
        allocation_gate  1 value, sigmoid                   g^a_t
        write_gate    1 value, sigmoid                      g^w_t
        read_modes    3R values: per head (backward, content, forward), softmax  pi^i_t

    so ``interface_size = R Pr + Pw + 2W + 4R + 2``; with ``content`` addressing
    (``P = W + 1``) that is ``W R + 3 W + 5 R + 3``, the paper's size. (The paper
    groups all read keys before all read strengths; here each head's parameters are
    contiguous, as every addressing scheme expects.) Each strength is shifted by +1
    (``oneplus``). A step returns the ``R`` read vectors concatenated,
    ``read_size = R W``.

    Initial state: everything zero, the memory included (the paper does not specify
    ``M_0``; zero rows have cosine similarity 0 with every key, so the first content
    lookups are uniform).

    Args:
        config: a :class:`DNCMemory.Config`.
        addressing: a factory ``factory(width, heads)`` for the content lookups.

    Raises:
        ValueError: when ``addressing`` is ``None``.
    """

    class Config(Options):
        """Options of the DNC memory."""

        slots: int = Field(128, ge=1, description="N: the number of memory slots (rows).")
        width: int = Field(20, ge=1, description="W: the width of one slot (columns).")
        read_heads: int = Field(2, ge=1, description="R: read heads, each returns W values.")
        write_heads: int = Field(
            1,
            ge=1,
            le=1,
            description="Write heads: the DNC has exactly one (Graves et al. 2016, Methods).",
        )
        eps: float = Field(
            1e-30,
            gt=0,
            le=1e-6,
            description=(
                "Floor of each usage factor inside the log-space product of the "
                "allocation weighting, so that log(0) never occurs; products change by "
                "less than eps (raised to the dtype's smallest normal number if lower)."
            ),
        )

    default_addressing = "content"
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is None:
            raise ValueError("DNCMemory needs an addressing scheme (the default is 'content').")
        self.slots = config.slots
        self.width = config.width
        self.read_heads = config.read_heads
        self.read_addressing = addressing(config.width, config.read_heads)
        self.write_addressing = addressing(config.width, 1)
        self.read_head_size = self.read_addressing.params_size
        self.write_head_size = self.write_addressing.params_size
        r, w = config.read_heads, config.width
        self.interface_size = r * self.read_head_size + self.write_head_size + 2 * w + 4 * r + 2
        self.read_size = r * w

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> DNCState:
        """The state before the first step: all zeros.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            A :class:`DNCState` of zeros: ``memory`` ``(B, N, W)``, ``usage`` ``(B, N)``,
            ``link`` ``(B, N, N)``, ``precedence`` ``(B, N)``, ``read_weights``
            ``(B, R, N)``, ``write_weights`` ``(B, 1, N)``.
        """
        b, n, w, r = batch_size, self.slots, self.width, self.read_heads
        zeros = partial(torch.zeros, device=device, dtype=dtype)
        return DNCState(
            memory=zeros(b, n, w),
            usage=zeros(b, n),
            link=zeros(b, n, n),
            precedence=zeros(b, n),
            read_weights=zeros(b, r, n),
            write_weights=zeros(b, 1, n),
        )

    def split_interface(self, interface: Tensor) -> DNCInterface:
        """Cut the interface vector into its parts and constrain them.

        Args:
            interface: ``(B, interface_size)`` unconstrained, laid out as in the class
                docstring.

        Returns:
            A :class:`DNCInterface`.
        """
        b, r, w = interface.shape[0], self.read_heads, self.width
        sizes = [r * self.read_head_size, self.write_head_size, w, w, r, 1, 1, 3 * r]
        raw_read, raw_write, erase, values, free, alloc, gate, modes = torch.split(
            interface, sizes, dim=-1
        )
        read_params = self.read_addressing.split(raw_read.reshape(b, r, self.read_head_size))
        write_params = self.write_addressing.split(raw_write.reshape(b, 1, self.write_head_size))
        return DNCInterface(
            read_params=oneplus_strength(read_params),
            write_params=oneplus_strength(write_params),
            erase=torch.sigmoid(erase),
            write_vector=values,
            free_gates=torch.sigmoid(free),
            allocation_gate=torch.sigmoid(alloc),
            write_gate=torch.sigmoid(gate),
            read_modes=torch.softmax(modes.reshape(b, r, 3), dim=-1),
        )

    def forward(self, interface: Tensor, state: DNCState) -> tuple[Tensor, DNCState]:
        """Allocate and write, update the links, then read (Methods).

        With ``content`` addressing the step runs as one fused autograd node with a
        hand-written backward (:mod:`.dnc_step`); every other scheme goes through
        :meth:`forward_reference`. Both compute the same numbers.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs.
            state: the previous :class:`DNCState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)``, the read vectors concatenated,
            and the new :class:`DNCState`.
        """
        read, write = self.read_addressing, self.write_addressing
        if type(read) is ContentAddressing and type(write) is ContentAddressing:
            eps = max(self.config.eps, torch.finfo(state.memory.dtype).tiny)
            reads, *new_state = dnc_step(interface, *state, read.config.eps, write.config.eps, eps)
            return reads, DNCState(*new_state)
        return self.forward_reference(interface, state)

    def run_with_controller(
        self,
        controller: Controller,
        interface: nn.Linear,
        inputs: Tensor,
        controller_state: State,
        state: State,
        reads: Tensor,
    ) -> tuple[Tensor, Tensor, State, State] | None:
        """With a one-layer ``lstm`` controller and ``content`` addressing, on the CPU
        kernels: the whole sequence as one autograd node
        (:mod:`nma_plugins.controllers.lstm_sequence`); else ``None`` (step by step)."""
        read, write = self.read_addressing, self.write_addressing
        if type(read) is not ContentAddressing or type(write) is not ContentAddressing:
            return None
        if not isinstance(state, DNCState):
            return None
        eps = max(self.config.eps, torch.finfo(state.memory.dtype).tiny)
        kernel = StepKernel(1, (read.config.eps, write.config.eps, eps))
        return run_lstm_with_memory(
            controller, interface, kernel, inputs, controller_state, state, reads
        )

    def forward_reference(self, interface: Tensor, state: DNCState) -> tuple[Tensor, DNCState]:
        """:meth:`forward` through the composable functions and the addressing modules,
        recorded by autograd: the path of every scheme but ``content``, and the
        reference the fused step (:mod:`.dnc_step`) is tested against.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs.
            state: the previous :class:`DNCState`.

        Returns:
            ``(reads, state)`` as :meth:`forward`.
        """
        parts = self.split_interface(interface)
        eps = max(self.config.eps, torch.finfo(interface.dtype).tiny)

        # Dynamic memory allocation, from the previous step's weightings.
        psi = retention(parts.free_gates, state.read_weights)
        usage = update_usage(state.usage, state.write_weights[:, 0], psi)
        allocation = allocation_weighting(usage, eps)

        # Write: content lookup on M_{t-1}, then erase and add.
        write_content = self.write_addressing(
            parts.write_params, state.memory, state.write_weights
        )  # (B, 1, N)
        write_weights = write_weighting(
            allocation, write_content[:, 0], parts.allocation_gate, parts.write_gate
        )  # (B, N)
        memory = write_memory(state.memory, write_weights, parts.erase, parts.write_vector)

        # Temporal linkage, from p_{t-1}; then the new precedence.
        link = update_link(state.link, write_weights, state.precedence)
        precedence = update_precedence(state.precedence, write_weights)

        # Read: backward, content (on M_t) and forward weightings, mixed by the modes.
        forward, backward = directional_weightings(link, state.read_weights)
        read_content = self.read_addressing(parts.read_params, memory, state.read_weights)
        read_weights = read_weighting(backward, read_content, forward, parts.read_modes)
        reads = torch.matmul(read_weights, memory)  # (B, R, W)

        new_state = DNCState(
            memory=memory,
            usage=usage,
            link=link,
            precedence=precedence,
            read_weights=read_weights,
            write_weights=write_weights.unsqueeze(1),
        )
        return reads.reshape(interface.shape[0], self.read_size), new_state

    def inspect(self, state: DNCState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            ``{"read_weights": (B, R, N), "write_weights": (B, 1, N), "usage": (B, N),
            "memory": (B, N, W), "precedence": (B, N), "link": (B, N, N)}``.
        """
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "usage": state.usage,
            "memory": state.memory,
            "precedence": state.precedence,
            "link": state.link,
        }

    def slot_usage(self, state: DNCState) -> Tensor:
        """The usage including this step's write, ``(B, N)`` in ``[0, 1]``.

        ``u_t`` lags one step behind the writes (the Methods' usage update adds
        ``w^w_{t-1}``); garbage collection must not free a slot written on the last
        step, so this is ``u_t + w^w_t − u_t ∘ w^w_t``, the usage the next step starts
        from before its retention.
        """
        written = state.write_weights.sum(dim=1).clamp(max=1.0)  # (B, N)
        return state.usage + written - state.usage * written

    def reorder_slots(self, state: DNCState, order: Tensor) -> DNCState:
        """Move slot ``order[b, i]`` to position ``i``, in every per-slot tensor.

        Memory rows, usage, precedence, read and write weightings, and both axes of
        the link matrix are permuted alike, so the next step reads the same vectors
        (as long as the allocation's free list has no ties whose index order changes).

        Args:
            state: a :class:`DNCState`.
            order: ``(B, N)`` a permutation of the slots per batch element.

        Returns:
            The reordered :class:`DNCState`.
        """
        b, n = order.shape
        rows = order.unsqueeze(-1)  # (B, N, 1)
        link = state.link.gather(1, rows.expand(b, n, n)).gather(
            2, order.unsqueeze(1).expand(b, n, n)
        )
        return DNCState(
            memory=state.memory.gather(1, rows.expand(b, n, state.memory.shape[-1])),
            usage=state.usage.gather(1, order),
            link=link,
            precedence=state.precedence.gather(1, order),
            read_weights=state.read_weights.gather(
                2, order.unsqueeze(1).expand_as(state.read_weights)
            ),
            write_weights=state.write_weights.gather(
                2, order.unsqueeze(1).expand_as(state.write_weights)
            ),
        )

    def clear_slots(self, state: DNCState, mask: Tensor) -> DNCState:
        """Free the slots where ``mask`` is true.

        Their memory rows, usage, precedence, and their rows and columns of the link
        matrix become zero; with zero usage they come first in the free list. The
        heads' read and write weightings are kept: they are where the heads looked,
        not stored data, and the next step's backward reads depend on them.

        Args:
            state: a :class:`DNCState`.
            mask: ``(B, N)`` bool, true for the slots to free.

        Returns:
            The new :class:`DNCState`.
        """
        keep = (~mask).to(state.usage.dtype)  # (B, N)
        return DNCState(
            memory=state.memory * keep.unsqueeze(-1),
            usage=state.usage * keep,
            link=state.link * keep.unsqueeze(-1) * keep.unsqueeze(-2),
            precedence=state.precedence * keep,
            read_weights=state.read_weights,
            write_weights=state.write_weights,
        )
