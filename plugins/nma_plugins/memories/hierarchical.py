"""A hierarchical memory: levels of growing size and slowing time scale, learned routing.

The memory is a stack of ``L`` content-addressed slot memories ("levels"). Each level
is read with the content addressing of the Neural Turing Machine and written with its
erase/add rule (Graves, Wayne & Danihelka 2014, "Neural Turing Machines",
arXiv:1410.5401, eqs. 2-6 and the several-heads rule of section 3.2). The hierarchy —
sizes, time scales, routing and consolidation — is this module's own design,
described here completely. Shapes use ``B`` for the batch, ``L`` for levels, ``N_l``
for the slots of level ``l``, ``S = sum_l N_l`` for all slots, ``W`` for the slot
width and ``R`` for read heads.

**Sizes and time scales.** Level ``l = 0..L-1`` has ``N_l = slots * growth^l`` slots
and period ``P_l = period^l``. The state carries a step counter ``tau`` (an integer
tensor, 0 before the first step). Step ``t`` first sets ``tau_t = tau_{t-1} + 1``;
level ``l`` is *due* at that step when

    d_l = [tau_t mod P_l == 0]                                  (0 or 1)

so level 0 is due at every step, level 1 every ``period`` steps, and so on. The mask
is computed from the step tensor on the device (no host synchronisation). A level
that is not due does not change at all: every write to it is multiplied by ``d_l``.

**Write routing.** The controller emits write-routing logits ``z^w`` (``L`` values);
the share of this step's write that goes to level ``l`` is the softmax over the
levels that are due,

    rho_l = d_l exp(z^w_l) / sum_j d_j exp(z^w_j)

(the not-due logits are masked before the softmax, so rho sums to 1 over the due
levels and level 0, always due, keeps the denominator positive).

**Writes.** With the write key ``k^w``, strength ``beta^w = softplus``, erase vector
``e = sigmoid`` and add vector ``a = tanh`` from the interface, and ``M_l`` the
level's memory before the step:

    c_l   = softmax_i(beta^w K(k^w, M_l(i)))                    NTM eqs. 5-6
    w_l   = rho_l c_l                                           direct write weighting

**Consolidation.** What a level erases is not lost at once: it is collected in a
buffer ``C_l`` (one ``W``-vector per level ``l < L - 1``) and written into level
``l + 1`` when that level is due. Level ``l >= 1`` receives, besides its direct
write, a consolidation write with the buffered content ``c^_{l-1}`` (defined below)
as key and as add vector, erase vector 1 (it overwrites), a gate ``g_{l-1} =
sigmoid`` and a strength ``beta^c_{l-1} = softplus`` from the interface:

    u_l   = d_l g_{l-1} softmax_i(beta^c_{l-1} K(c^_{l-1}, M_l(i)))    consolidation weighting

Both writes of a level are applied at once with the NTM's rule for several heads
(erasures multiply, additions add; ``u_0 = 0``):

    keep_l = (1 - w_l e^T) o (1 - u_l 1^T)                      (N_l x W)
    M'_l   = M_l o keep_l + w_l a^T + u_l c^_{l-1}^T             NTM eqs. 3-4

and the content erased from the level at this step is

    eps_l  = sum_i M_l(i) o (1 - keep_l(i))                     (W)

The levels are processed in order 0, 1, ..., so that level ``l + 1`` sees the buffer
of level ``l`` including this step's erasure: with ``C_{l,t-1}`` the buffer before
the step,

    c^_l       = C_{l,t-1} + eps_l / period                     pending summary
    C_{l,t}    = (1 - d_{l+1}) c^_l                             emptied when consumed

Since level ``l`` changes only every ``P_l`` steps and level ``l + 1`` is due every
``period`` of those, ``c^_l`` is the mean of what level ``l`` erased on its last
``period`` writes. What the last level erases is forgotten.

**Reads** (after the writes, from the new memory ``M'``). Read head ``r`` emits a key
``k^r``, a strength ``beta^r = softplus`` and read-routing logits ``z^r`` (``L``
values); it reads every level by content and mixes the per-level reads:

    v_{r,l} = softmax_i(beta^r K(k^r, M'_l(i)))                 per-level weighting
    pi_r    = softmax(z^r)                                      read routing
    read_r  = sum_l pi_{r,l} sum_i v_{r,l}(i) M'_l(i)           NTM eq. 2, mixed

which is a read of the concatenated memory ``M'`` (``S x W``) with the weighting
``[pi_{r,0} v_{r,0}, ..., pi_{r,L-1} v_{r,L-1}]`` (it sums to 1).

**What is differentiable.** Everything except the due mask ``d`` (a function of the
integer step counter): the routing logits, gates, keys, strengths, erase and add
vectors, the memory, the consolidation buffers and the learned initial memory all
receive gradients. The initial memory is learned, per level initialised uniform in
``+-1/sqrt(N_l + W)`` as the NTM's.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor, nn

from nma import AddressingFactory, Memory, Options
from nma_plugins.addressing.content import content_weights
from nma_plugins.memories.ntm_write import erase_add


class HierarchicalState(NamedTuple):
    """The recurrent state of :class:`HierarchicalMemory` after a step.

    Attributes:
        memory: ``(B, S, W)`` every level's memory, level 0 first (slots
            ``o_l .. o_l + N_l - 1`` are level ``l``, ``o_l = sum_{j<l} N_j``).
        read_weights: ``(B, R, S)`` the per-level content weightings ``v_{r,l}`` of
            the read heads; each level's slice sums to 1.
        read_routing: ``(B, R, L)`` the read routing ``pi_r``.
        write_weights: ``(B, 2, S)`` the write weightings applied: row 0 the direct
            write ``w_l`` (zero on levels not due), row 1 the consolidation ``u_l``
            (zero on level 0 and on levels not due).
        write_routing: ``(B, L)`` the write routing ``rho`` (zero on levels not due).
        buffer: ``(B, L - 1, W)`` the consolidation buffers ``C_l``.
        step: ``(B,)`` int64, the step counter ``tau``.
    """

    memory: Tensor
    read_weights: Tensor
    read_routing: Tensor
    write_weights: Tensor
    write_routing: Tensor
    buffer: Tensor
    step: Tensor


class HierarchicalMemory(Memory):
    """Levels of slot memories on growing time scales, with learned routing.

    See the module docstring for every equation. Interface layout, per step and per
    batch element::

        [ write | consolidation | read_0 | ... | read_{R-1} ]

        write          key W, strength 1 (softplus), erase W (sigmoid), add W (tanh),
                       routing logits L                          3W + 1 + L values
        consolidation  gates L-1 (sigmoid), then strengths L-1 (softplus); entry l
                       is for the consolidation of level l into level l+1
        read_r         key W, strength 1 (softplus), routing logits L

    so ``interface_size = 3W + 1 + L + 2(L - 1) + R (W + 1 + L)``. A step returns the
    ``R`` read vectors concatenated, ``read_size = R W``.

    Args:
        config: a :class:`HierarchicalMemory.Config`.
        addressing: unused (every level is content-addressed); must be ``None``.
    """

    class Config(Options):
        """Options of the hierarchical memory."""

        levels: int = Field(3, ge=1, le=8, description="L: the number of levels.")
        slots: int = Field(16, ge=1, description="N_0: the slots of level 0.")
        growth: int = Field(2, ge=1, le=16, description="Level l has slots * growth^l slots.")
        period: int = Field(4, ge=1, le=64, description="Level l is written every period^l steps.")
        width: int = Field(20, ge=1, description="W: the width of one slot.")
        read_heads: int = Field(1, ge=1, description="R: read heads, each returns W values.")
        eps: float = Field(
            1e-6,
            gt=0,
            description="Added to |k||M(i)| in the cosine similarity (NTM eq. 6).",
        )

    default_addressing = None
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is not None:
            raise ValueError("HierarchicalMemory takes no addressing scheme.")
        self.levels = config.levels
        self.width = config.width
        self.read_heads = config.read_heads
        self.level_slots = [config.slots * config.growth**level for level in range(self.levels)]
        self.offsets = [sum(self.level_slots[:level]) for level in range(self.levels)]
        self.slots = sum(self.level_slots)
        w, n_levels = config.width, config.levels
        self.write_size = 3 * w + 1 + n_levels
        self.head_size = w + 1 + n_levels
        self.interface_size = (
            self.write_size + 2 * (n_levels - 1) + self.read_heads * self.head_size
        )
        self.read_size = self.read_heads * w
        periods = torch.tensor([config.period**level for level in range(n_levels)])
        self.register_buffer("periods", periods, persistent=False)  # (L,) int64
        slot_level = torch.repeat_interleave(torch.arange(n_levels), torch.tensor(self.level_slots))
        self.register_buffer("slot_level", slot_level, persistent=False)  # (S,) int64
        init = [
            torch.empty(n, w).uniform_(-1 / math.sqrt(n + w), 1 / math.sqrt(n + w))
            for n in self.level_slots
        ]
        self.memory_init = nn.Parameter(torch.cat(init))  # (S, W)

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> HierarchicalState:
        """The state before the first step.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            A :class:`HierarchicalState`: ``memory`` the learned ``memory_init``
            expanded over the batch (gradients reach it), empty buffers, step 0,
            uniform routing and per-level weightings, zero write weightings.
        """
        b, r, n_levels, s = batch_size, self.read_heads, self.levels, self.slots
        memory = self.memory_init.to(device=device, dtype=dtype)
        read_weights = torch.tensor([1.0 / n for n in self.level_slots], dtype=dtype)
        read_weights = read_weights.to(device)[self.slot_level].expand(b, r, s).clone()
        return HierarchicalState(
            memory=memory.unsqueeze(0).expand(b, s, self.width),
            read_weights=read_weights,
            read_routing=torch.full((b, r, n_levels), 1 / n_levels, device=device, dtype=dtype),
            write_weights=torch.zeros(b, 2, s, device=device, dtype=dtype),
            write_routing=torch.zeros(b, n_levels, device=device, dtype=dtype),
            buffer=torch.zeros(b, n_levels - 1, self.width, device=device, dtype=dtype),
            step=torch.zeros(b, device=device, dtype=torch.int64),
        )

    def due(self, step: Tensor) -> Tensor:
        """Which levels are due at step ``tau``: ``(B, L)`` boolean, ``tau mod P_l == 0``.

        Args:
            step: ``(B,)`` int64 step counters (``tau_t``, after the increment).
        """
        return torch.remainder(step.unsqueeze(-1), self.periods) == 0

    def forward(
        self, interface: Tensor, state: HierarchicalState
    ) -> tuple[Tensor, HierarchicalState]:
        """Route and write every due level, consolidate, then read all levels.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`HierarchicalState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)`` and the new state.
        """
        batch, w, n_levels, eps = interface.shape[0], self.width, self.levels, self.config.eps
        fill = torch.finfo(interface.dtype).min

        # Parse the interface.
        write = interface[:, : self.write_size]
        write_key = write[:, None, :w]  # (B, 1, W)
        write_strength = F.softplus(write[:, None, w : w + 1])  # (B, 1, 1)
        erase = torch.sigmoid(write[:, None, w + 1 : 2 * w + 1])  # (B, 1, W)
        add = torch.tanh(write[:, None, 2 * w + 1 : 3 * w + 1])  # (B, 1, W)
        write_logits = write[:, 3 * w + 1 :]  # (B, L)
        cons_end = self.write_size + 2 * (n_levels - 1)
        cons = interface[:, self.write_size : cons_end]
        cons_gate = torch.sigmoid(cons[:, : n_levels - 1])  # (B, L-1)
        cons_strength = F.softplus(cons[:, n_levels - 1 :])  # (B, L-1)
        heads = interface[:, cons_end:].reshape(batch, self.read_heads, self.head_size)
        read_keys = heads[..., :w]  # (B, R, W)
        read_strengths = F.softplus(heads[..., w : w + 1])  # (B, R, 1)
        read_routing = torch.softmax(heads[..., w + 1 :], dim=-1)  # (B, R, L)

        # The time scales and the write routing over the due levels.
        step = state.step + 1
        due = self.due(step)  # (B, L) bool
        due_f = due.to(interface.dtype)
        write_routing = torch.softmax(write_logits.masked_fill(~due, fill), dim=-1)  # (B, L)

        memories: list[Tensor] = []
        direct: list[Tensor] = []
        consolidation: list[Tensor] = []
        buffers: list[Tensor] = []
        pending = interface.new_zeros(batch, w)  # c^_{l-1}; unused for level 0
        for level in range(n_levels):
            start = self.offsets[level]
            memory = state.memory[:, start : start + self.level_slots[level]]  # (B, N_l, W)
            content = content_weights(write_key, write_strength, memory, eps)  # (B, 1, N_l)
            w_direct = write_routing[:, level, None, None] * content
            if level == 0:
                w_cons = torch.zeros_like(w_direct)
            else:
                gate = due_f[:, level] * cons_gate[:, level - 1]  # (B,)
                key = pending.unsqueeze(1)  # (B, 1, W)
                strength = cons_strength[:, level - 1, None, None]  # (B, 1, 1)
                w_cons = gate[:, None, None] * content_weights(key, strength, memory, eps)
            weights = torch.cat([w_direct, w_cons], dim=1)  # (B, 2, N_l)
            erases = torch.cat([erase, torch.ones_like(erase)], dim=1)  # (B, 2, W)
            adds = torch.cat([add, pending.unsqueeze(1)], dim=1)  # (B, 2, W)
            new_memory, keep = erase_add(memory, weights, erases, adds)
            memories.append(new_memory)
            direct.append(w_direct)
            consolidation.append(w_cons)
            if level < n_levels - 1:
                evicted = (memory * (1 - keep)).sum(dim=1)  # (B, W): eps_l
                pending = state.buffer[:, level] + evicted / self.config.period
                buffers.append((1 - due_f[:, level + 1, None]) * pending)

        memory = torch.cat(memories, dim=1)  # (B, S, W)
        write_weights = torch.cat([torch.cat(direct, dim=2), torch.cat(consolidation, dim=2)], 1)
        buffer = (
            torch.stack(buffers, dim=1) if buffers else state.buffer.new_zeros(batch, 0, w)
        )  # (B, L-1, W)

        # Reads: every level by content, mixed by the read routing.
        read_weights = torch.cat(
            [
                content_weights(
                    read_keys,
                    read_strengths,
                    memory[:, start : start + n],
                    eps,
                )
                for start, n in zip(self.offsets, self.level_slots, strict=True)
            ],
            dim=-1,
        )  # (B, R, S)
        mixed = read_routing[..., self.slot_level] * read_weights  # (B, R, S)
        reads = torch.matmul(mixed, memory)  # (B, R, W)
        new = HierarchicalState(
            memory=memory,
            read_weights=read_weights,
            read_routing=read_routing,
            write_weights=write_weights,
            write_routing=write_routing,
            buffer=buffer,
            step=step,
        )
        return reads.reshape(batch, self.read_size), new

    def inspect(self, state: HierarchicalState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            The whole memory as one flat memory of ``S`` slots, level 0 first:
            ``"read_weights"`` ``(B, R, S)`` the effective read weighting
            ``pi_{r,l} v_{r,l}(i)`` (sums to 1), ``"write_weights"`` ``(B, 2, S)`` (row
            0 the direct write, row 1 the consolidation), ``"memory"`` ``(B, S, W)``;
            the routing: ``"read_routing"`` ``(B, R, L)``, ``"write_routing"``
            ``(B, L)``, ``"due"`` ``(B, L)`` (1.0 for the levels due at this step, all
            0.0 before the first step), ``"buffer"`` ``(B, L-1, W)``; and per level ``l``:
            ``"level{l}_read_weights"`` ``(B, R, N_l)`` (the within-level weighting
            ``v_{r,l}``, sums to 1), ``"level{l}_write_weights"`` ``(B, 2, N_l)`` and
            ``"level{l}_memory"`` ``(B, N_l, W)``.
        """
        out = {
            "read_weights": state.read_routing[..., self.slot_level] * state.read_weights,
            "write_weights": state.write_weights,
            "memory": state.memory,
            "read_routing": state.read_routing,
            "write_routing": state.write_routing,
            "due": (self.due(state.step) & (state.step > 0).unsqueeze(-1)).to(state.memory.dtype),
            "buffer": state.buffer,
        }
        for level, (start, n) in enumerate(zip(self.offsets, self.level_slots, strict=True)):
            out[f"level{level}_read_weights"] = state.read_weights[..., start : start + n]
            out[f"level{level}_write_weights"] = state.write_weights[..., start : start + n]
            out[f"level{level}_memory"] = state.memory[:, start : start + n]
        return out
