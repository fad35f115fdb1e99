"""A key-value attention memory: a ring buffer of (key, value) slots read by attention.

Writes: every step claims one slot, the next in a ring of ``N`` slots (slots fill in
order 0, 1, ..., N-1, then the oldest is overwritten), and stores the step's key
``k_t`` and value ``v_t`` there. A write gate ``g_t = sigmoid(raw)`` sets how much
the slot takes part in later reads: its presence ``m(i)`` becomes ``g_t``. With
``e_t`` the one-hot of the claimed slot and ``w_t = g_t e_t`` the write weighting,
in the erase-and-add form of the NTM (Graves et al. 2014, eqs. 3-4, erasing the
whole slot):

    K_t = K_{t-1} o (1 - e_t 1^T) + e_t k_t^T
    V_t = V_{t-1} o (1 - e_t 1^T) + e_t v_t^T
    m_t = m_{t-1} o (1 - e_t) + w_t

Reads: multi-head scaled dot-product attention (Vaswani et al. 2017, eq. 1 and
section 3.2.2) of the controller's queries over the present slots, each slot's score
offset by ``log m(i)``, with optional hops ``u^{k+1} = u^k + o^k`` (Sukhbaatar et al.
2015, "End-To-End Memory Networks", section 2.2); see
:mod:`nma_plugins.memories.kv_attention`. A step writes, then reads, so a read sees
the slot written at the same step.

The ring pointer is kept as a per-slot place in the write queue (``queue(i) = 0``
for the slot written next, ``N - 1`` for the one written last), which moves with the
slots under :meth:`KVMemory.reorder_slots`, so the first-in-first-out order survives
garbage collection and compaction.

Shapes use ``B`` for the batch, ``N`` for slots, ``D`` for the key size, ``W`` for
the value width and ``R`` for read (attention) heads.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from pydantic import Field
from torch import Tensor

from nma import AddressingFactory, Memory, Options
from nma_plugins.memories.kv_attention import multi_hop_attention


class KVState(NamedTuple):
    """The recurrent state of :class:`KVMemory` after a step.

    Attributes:
        keys: ``(B, N, D)`` the slots' keys ``K_t``.
        values: ``(B, N, W)`` the slots' values ``V_t``.
        presence: ``(B, N)`` ``m_t`` in ``[0, 1]``: the write gate of the slot's last
            write, 0 for a slot never written (or cleared).
        queue: ``(B, N)`` int64, each slot's place in the write queue, a permutation
            of ``0 .. N-1``; the slot with 0 is written next.
        read_weights: ``(B, R, N)`` the heads' attention weights at the last hop.
        write_weights: ``(B, 1, N)`` ``w_t = g_t e_t``, the claimed slot times the gate.
    """

    keys: Tensor
    values: Tensor
    presence: Tensor
    queue: Tensor
    read_weights: Tensor
    write_weights: Tensor


class KVMemory(Memory):
    """A ring buffer of (key, value) slots read by multi-head attention, with hops.

    Interface layout, per step and per batch element (``interface_size`` values)::

        [ key k_t | value v_t | gate | query_0 | ... | query_{R-1} ]

        key      D values, used as they are
        value    W values, used as they are
        gate     1 value, through a sigmoid: the written slot's presence g_t
        query_h  D values: head h's query u^1_h

    so ``interface_size = D + W + 1 + R D``. Keys, values and queries are linear
    functions of the controller output (the model's interface layer), which plays the
    part of Vaswani et al.'s learned projections; the memory adds none of its own
    (see docs/memories.md, section kv). A step returns the heads' reads concatenated,
    ``read_size = R W``: per head the sum of its hops' outputs, ``o^1`` for one hop,
    plus its query ``u^1`` with ``read_query`` (so ``u^{K+1}``).

    Args:
        config: a :class:`KVMemory.Config`.
        addressing: unused (``default_addressing`` is ``None``: the attention read is
            the memory's own).

    Raises:
        ValueError: when ``hops > 1`` or ``read_query`` and ``key_size != width`` (the
            hop update ``u + o`` adds a value to a query).
    """

    class Config(Options):
        """Options of the key-value attention memory."""

        slots: int = Field(128, ge=1, description="N: slots in the ring buffer.")
        width: int = Field(32, ge=1, description="W: the width of a value.")
        key_size: int = Field(32, ge=1, description="D: the size of a key and of a query.")
        read_heads: int = Field(
            4, ge=1, description="R: attention heads, each with its own query; each reads W."
        )
        hops: int = Field(
            1,
            ge=1,
            description=(
                "Attention rounds per read, u^{k+1} = u^k + o^k (MemN2N section 2.2); "
                "more than 1 needs key_size == width."
            ),
        )
        read_query: bool = Field(
            False,
            description=(
                "Each head reads u^{K+1} = u^1 + o^1 + ... + o^K, its query with the hops' "
                "outputs added, the vector End-To-End Memory Networks answer from (section "
                "2.2), instead of o^1 + ... + o^K; needs key_size == width."
            ),
        )
        eps: float = Field(
            1e-6,
            gt=0,
            lt=1,
            description=(
                "Slots whose presence (write gate) is at most eps take no part in "
                "attention; bounds the gradient of log m by 1/eps."
            ),
        )

    default_addressing = None
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if (config.hops > 1 or config.read_query) and config.key_size != config.width:
            raise ValueError(
                "KVMemory with hops > 1 or read_query needs key_size == width: the next "
                "hop's query and the read_query read are u + o, a query plus a value (got "
                f"key_size={config.key_size}, width={config.width})."
            )
        self.slots = config.slots
        self.width = config.width
        self.key_size = config.key_size
        self.read_heads = config.read_heads
        self.interface_size = config.key_size * (1 + config.read_heads) + config.width + 1
        self.read_size = config.read_heads * config.width

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVState:
        """The state before the first step: an empty ring whose next slot is slot 0.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: the floating-point type of the float tensors.

        Returns:
            A :class:`KVState`: zero ``keys`` ``(B, N, D)``, ``values`` ``(B, N, W)``,
            ``presence`` ``(B, N)``, ``read_weights`` ``(B, R, N)`` and
            ``write_weights`` ``(B, 1, N)``; ``queue`` ``(B, N)`` is ``0 .. N-1``.
        """
        b, n = batch_size, self.slots
        zeros = {"device": device, "dtype": dtype}
        queue = torch.arange(n, device=device, dtype=torch.int64).expand(b, n).clone()
        return KVState(
            keys=torch.zeros(b, n, self.key_size, **zeros),
            values=torch.zeros(b, n, self.width, **zeros),
            presence=torch.zeros(b, n, **zeros),
            queue=queue,
            read_weights=torch.zeros(b, self.read_heads, n, **zeros),
            write_weights=torch.zeros(b, 1, n, **zeros),
        )

    def forward(self, interface: Tensor, state: KVState) -> tuple[Tensor, KVState]:
        """Write the step's (key, value) into the next ring slot, then read by attention.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`KVState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)``, the heads' reads concatenated;
            ``state`` the new :class:`KVState`.
        """
        batch, d, w = interface.shape[0], self.key_size, self.width
        key = interface[:, :d]  # (B, D)
        value = interface[:, d : d + w]  # (B, W)
        gate = torch.sigmoid(interface[:, d + w : d + w + 1])  # (B, 1)
        queries = interface[:, d + w + 1 :].reshape(batch, self.read_heads, d)  # (B, R, D)

        claimed = (state.queue == 0).to(interface.dtype)  # (B, N), the one-hot e_t
        kept = (1 - claimed).unsqueeze(-1)  # (B, N, 1)
        keys = state.keys * kept + claimed.unsqueeze(-1) * key.unsqueeze(1)
        values = state.values * kept + claimed.unsqueeze(-1) * value.unsqueeze(1)
        write_weights = claimed * gate  # (B, N)
        presence = state.presence * (1 - claimed) + write_weights
        queue = torch.remainder(state.queue - 1, self.slots)  # the claimed slot goes last

        reads, read_weights = multi_hop_attention(
            queries, keys, values, presence, self.config.hops, self.config.eps
        )  # (B, R, W), (B, R, N)
        if self.config.read_query:
            reads = reads + queries  # u^{K+1} = u^1 + sum_k o^k
        new_state = KVState(keys, values, presence, queue, read_weights, write_weights.unsqueeze(1))
        return reads.reshape(batch, self.read_size), new_state

    def slot_usage(self, state: KVState) -> Tensor:
        """The presence ``m_t`` ``(B, N)`` in ``[0, 1]``: 0 for empty slots, else the
        gate of the slot's last write."""
        return state.presence

    def reorder_slots(self, state: KVState, order: Tensor) -> KVState:
        """Permute the slots: slot ``order[b, i]`` becomes slot ``i``.

        Keys, values, presence, weightings and the queue places move alike, so the
        next step writes the same (moved) slot and attention, which does not depend
        on slot order, reads the same: every later step reads as it would have.

        Args:
            state: a :class:`KVState`.
            order: ``(B, N)`` int64, a permutation of ``0 .. N-1`` per batch element.

        Returns:
            The permuted :class:`KVState`.
        """
        return KVState(
            keys=state.keys.gather(1, order.unsqueeze(-1).expand_as(state.keys)),
            values=state.values.gather(1, order.unsqueeze(-1).expand_as(state.values)),
            presence=state.presence.gather(1, order),
            queue=state.queue.gather(1, order),
            read_weights=state.read_weights.gather(
                2, order.unsqueeze(1).expand_as(state.read_weights)
            ),
            write_weights=state.write_weights.gather(
                2, order.unsqueeze(1).expand_as(state.write_weights)
            ),
        )

    def clear_slots(self, state: KVState, mask: Tensor) -> KVState:
        """Free the slots where ``mask`` ``(B, N)`` is true.

        Their keys, values, presence and weightings become zero, and they move to the
        front of the write queue (in their previous queue order), ahead of the other
        slots, which keep their order: the next writes fill the freed slots first.

        Args:
            state: a :class:`KVState`.
            mask: ``(B, N)`` bool, true for the slots to free.

        Returns:
            The new :class:`KVState`.
        """
        keep = (~mask).to(state.presence.dtype)  # (B, N)
        # Freed slots sort before all others (places -N .. -1), then re-rank 0 .. N-1.
        place = torch.where(mask, state.queue - self.slots, state.queue)
        queue = torch.argsort(torch.argsort(place, dim=-1), dim=-1)
        return KVState(
            keys=state.keys * keep.unsqueeze(-1),
            values=state.values * keep.unsqueeze(-1),
            presence=state.presence * keep,
            queue=queue,
            read_weights=state.read_weights * keep.unsqueeze(1),
            write_weights=state.write_weights * keep.unsqueeze(1),
        )

    def inspect(self, state: KVState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            ``{"read_weights": (B, R, N)`` the attention weights of the last hop,
            ``"write_weights": (B, 1, N)`` the claimed slot times the gate,
            ``"usage": (B, N)`` the presence ``m_t``, ``"memory": (B, N, W)`` the
            values, ``"keys": (B, N, D)``}.
        """
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "usage": state.presence,
            "memory": state.values,
            "keys": state.keys,
        }
