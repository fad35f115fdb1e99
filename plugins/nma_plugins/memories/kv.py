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

End-To-End Memory Networks (Sukhbaatar et al. 2015, "MemN2N") as a configuration:
``hop_embeddings = "adjacent"`` gives every slot one embedding per hop with adjacent
weight tying (``A^{k+1} = C^k``, section 2.2), ``tie_query`` takes the question's
query from its own first embedding (``B = A^1``), ``read_before_write`` reads the
memory as it was before the step (the question is not in the memory it is asked
about), ``controller_reads = false`` keeps the reads out of the controller's next
input (the memories are embeddings of the inputs alone; the model then runs the
memory over whole sequences, :meth:`KVMemory.run_sequence`),
``linear_start_steps`` removes the softmax for the first training batches (linear
start, section 4.2), and ``tie_answer`` makes the answer matrix the last hop's output
embedding (``W^T = C^K``, :class:`nma.tied_head.TiedHead`). With an ``mlp`` controller
of ``layers = 0`` (a pass-through), every embedding is a linear function of the step's
input, as in the paper; see docs/memories.md, section kv, for what differs.
``hop_gates`` replaces the additive hop update by a learned gate (Gated End-to-End
Memory Networks, Liu & Perez 2017, section 3).

Shapes use ``B`` for the batch, ``N`` for slots, ``D`` for the key size, ``W`` for
the value width and ``R`` for read (attention) heads.
"""

from __future__ import annotations

import math
from typing import Any, Literal, NamedTuple

import torch
from pydantic import Field
from torch import Tensor, nn

from nma import AddressingFactory, Memory, Options
from nma_plugins.memories.kv_attention import adjacent_hop_attention, multi_hop_attention


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
                 (absent with write_gate = false: g_t = 1)
        query_h  D values: head h's query u^1_h

    so ``interface_size = D + W + 1 + R D`` (``D + W + R D`` without the gate). With
    ``hop_embeddings = "adjacent"`` (``K`` hops) the value part holds ``K`` values,
    ``E^1 .. E^K``, after the key ``E^0`` (``K W`` values, ``W = D``); with
    ``tie_query`` there are no query values (the one head's query is the step's key).
    Keys, values and queries are linear functions of the controller output (the model's
    interface layer), which plays the part of Vaswani et al.'s learned projections; the
    memory adds none of its own (see docs/memories.md, section kv). A step returns the
    heads' reads concatenated, ``read_size = R W``: per head the sum of its hops'
    outputs, ``o^1`` for one hop (with ``hop_gates``, ``u^{K+1} - u^1`` of the gated
    updates), plus its query ``u^1`` with ``read_query`` (so ``u^{K+1}``).

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
        hop_embeddings: Literal["shared", "adjacent"] = Field(
            "shared",
            description=(
                "shared: one key and one value per slot, read at every hop (layer-wise "
                "tying with H = I); adjacent: K + 1 embeddings per slot, hop k scoring with "
                "E^{k-1} and reading E^k (MemN2N adjacent tying, A^{k+1} = C^k); needs "
                "key_size == width."
            ),
        )
        hop_gates: bool = Field(
            False,
            description=(
                "Gated hops (Liu & Perez 2017, Gated End-to-End Memory Networks): "
                "u^{k+1} = o^k * T^k + u^k * (1 - T^k), T^k = sigmoid(W_T^k u^k + b_T^k), a "
                "learned D x D gate per hop, instead of u^{k+1} = u^k + o^k; needs "
                "key_size == width."
            ),
        )
        tie_query: bool = Field(
            False,
            description=(
                "The query is the step's own key (MemN2N's B = A^1) instead of separate "
                "interface values; needs read_heads == 1."
            ),
        )
        read_before_write: bool = Field(
            False,
            description=(
                "Read the memory as it was before this step's write (MemN2N: the question "
                "is not among the memories it reads); default: write, then read."
            ),
        )
        controller_reads: bool = Field(
            True,
            description=(
                "The reads join the controller's next input (the framework's default); "
                "false: they go to the output head only, so keys and values depend on "
                "the inputs alone, as in MemN2N."
            ),
        )
        answer_from_reads: bool = Field(
            False,
            description=(
                "The output head reads the memory's reads alone, not the controller "
                "output beside them: MemN2N's answer W u^{K+1} (with read_query), with no "
                "direct path from the question's embedding to the answer."
            ),
        )
        tie_answer: bool = Field(
            False,
            description=(
                "The output head's answer matrix is the last hop's output embedding, "
                "W^T = C^K (MemN2N adjacent tying, section 2.2): each answer's row is the "
                "embedding E^K of the input word(s) that spell it; needs hop_embeddings = "
                "'adjacent', read_heads == 1, a controller that passes its input through "
                "(mlp, layers = 0) and a task whose answers are input words (babi)."
            ),
        )
        init_std: float = Field(
            0.0,
            ge=0,
            description=(
                "With a positive value, the interface layer that computes keys, values "
                "and queries starts from N(0, init_std^2) weights and zero biases (MemN2N "
                "section 4.2: sigma = 0.1); 0: nn.Linear's default initialisation."
            ),
        )
        scaled_scores: bool = Field(
            True,
            description=(
                "Scores are q . K(i) / sqrt(D) (Vaswani et al. eq. 1); false: plain dot "
                "products q . K(i), as MemN2N scores (Sukhbaatar et al. eq. 1)."
            ),
        )
        write_gate: bool = Field(
            True,
            description=(
                "A learned write gate sets each written slot's presence (one interface "
                "value); false: every written slot is fully present, as every memory "
                "counts in MemN2N, and the interface has no gate value."
            ),
        )
        linear_start_steps: int = Field(
            0,
            ge=0,
            description=(
                "Training batches (counted by the memory, in training mode) during which "
                "attention has no softmax: linear start (MemN2N section 4.2); 0: never."
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
        adjacent = config.hop_embeddings == "adjacent"
        mixes = config.hops > 1 or config.read_query or adjacent or config.hop_gates
        if mixes and config.key_size != config.width:
            raise ValueError(
                "KVMemory with hops > 1, read_query, hop_gates or hop_embeddings='adjacent' "
                "needs key_size == width: the next hop's query and the read_query read mix "
                "a query and a value, and adjacent hops use a value as the next key (got "
                f"key_size={config.key_size}, width={config.width})."
            )
        if config.tie_query and config.read_heads != 1:
            raise ValueError(
                "KVMemory with tie_query has one query, the step's key: it needs "
                f"read_heads == 1 (got {config.read_heads})."
            )
        if config.tie_answer and (not adjacent or config.read_heads != 1):
            raise ValueError(
                "KVMemory with tie_answer ties the answer matrix to the last hop's output "
                "embedding C^K: it needs hop_embeddings='adjacent' and read_heads == 1 (got "
                f"hop_embeddings={config.hop_embeddings!r}, read_heads={config.read_heads})."
            )
        self.slots = config.slots
        self.width = config.width
        self.key_size = config.key_size
        self.read_heads = config.read_heads
        self.value_size = config.width * (config.hops if adjacent else 1)
        """The values stored per slot: ``W``, or ``K W`` with adjacent embeddings."""
        queries = 0 if config.tie_query else config.key_size * config.read_heads
        self.gate_size = 1 if config.write_gate else 0
        self.interface_size = config.key_size + self.value_size + self.gate_size + queries
        self.read_size = config.read_heads * config.width
        self.reads_to_controller = config.controller_reads
        self.head_sees_controller = not config.answer_from_reads
        if config.tie_answer:  # E^K, the last of the K values after the key
            last = config.key_size + (config.hops - 1) * config.width
            self.output_embedding = slice(last, last + config.width)
        if config.hop_gates:  # W_T^k, b_T^k of hop k at index k - 1
            d, bound = config.key_size, 1.0 / math.sqrt(config.key_size)
            self.gate_weight = nn.Parameter(torch.empty(config.hops, d, d).uniform_(-bound, bound))
            self.gate_bias = nn.Parameter(torch.zeros(config.hops, d))
        self.batches_seen = 0
        """Training-mode batches started (:meth:`initial_state` calls) so far: the
        clock of linear start, kept in the ``linear_start_clock`` buffer (checkpoints)."""
        if config.linear_start_steps:
            self.register_buffer("linear_start_clock", torch.zeros((), dtype=torch.int64))

    def init_interface(self, layer: nn.Linear) -> None:
        """With ``init_std > 0``: ``N(0, init_std^2)`` weights and zero biases for the
        embeddings (Sukhbaatar et al. 2015, section 4.2); else ``nn.Linear``'s own."""
        if self.config.init_std > 0:
            with torch.no_grad():
                layer.weight.normal_(0.0, self.config.init_std)
                layer.bias.zero_()

    @property
    def linear(self) -> bool:
        """Whether attention runs without its softmax now (linear start): until
        ``linear_start_steps`` training batches have been started."""
        return self.batches_seen <= self.config.linear_start_steps and bool(
            self.config.linear_start_steps
        )

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        """Load as usual, then set the linear-start clock from its buffer."""
        super()._load_from_state_dict(state_dict, prefix, *args)
        if self.config.linear_start_steps:
            self.batches_seen = int(self.linear_start_clock)

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVState:
        """The state before the first step: an empty ring whose next slot is slot 0.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: the floating-point type of the float tensors.

        Returns:
            A :class:`KVState`: zero ``keys`` ``(B, N, D)``, ``values`` ``(B, N, W)``
            (``(B, N, K W)`` with adjacent embeddings),
            ``presence`` ``(B, N)``, ``read_weights`` ``(B, R, N)`` and
            ``write_weights`` ``(B, 1, N)``; ``queue`` ``(B, N)`` is ``0 .. N-1``.
        """
        if self.training and self.config.linear_start_steps:
            self.batches_seen += 1
            self.linear_start_clock.fill_(self.batches_seen)
        b, n = batch_size, self.slots
        zeros = {"device": device, "dtype": dtype}
        queue = torch.arange(n, device=device, dtype=torch.int64).expand(b, n).clone()
        return KVState(
            keys=torch.zeros(b, n, self.key_size, **zeros),
            values=torch.zeros(b, n, self.value_size, **zeros),
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
        batch = interface.shape[0]
        key, value, gate, queries = self._split(interface)
        if self.config.read_before_write:
            reads, read_weights = self._read(queries, state.keys, state.values, state.presence)
        keys, values, presence, queue, write_weights = self._write(key, value, gate, state)
        if not self.config.read_before_write:
            reads, read_weights = self._read(queries, keys, values, presence)
        new_state = KVState(keys, values, presence, queue, read_weights, write_weights.unsqueeze(1))
        return reads.reshape(batch, self.read_size), new_state

    def _split(self, interface: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The key ``(..., D)``, value ``(..., W)`` (``(..., K W)`` adjacent), gate
        ``(...,)`` after its sigmoid and queries ``(..., R, D)`` of interface vectors
        ``(..., interface_size)``."""
        d, w, g = self.key_size, self.value_size, self.gate_size
        key = interface[..., :d]
        value = interface[..., d : d + w]
        shape = interface.shape[:-1]
        gate = torch.sigmoid(interface[..., d + w]) if g else interface.new_ones(shape)
        if self.config.tie_query:
            queries = key.unsqueeze(-2)  # B = A^1: the key is the query
        else:
            queries = interface[..., d + w + g :].unflatten(-1, (self.read_heads, d))
        return key, value, gate, queries

    def _write(
        self, key: Tensor, value: Tensor, gate: Tensor, state: KVState
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Claim the next ring slot for ``(key, value)`` with presence ``gate`` ``(B,)``:
        the new keys, values, presence, queue and write weights ``(B, N)``."""
        claimed = (state.queue == 0).to(key.dtype)  # (B, N), the one-hot e_t
        kept = (1 - claimed).unsqueeze(-1)  # (B, N, 1)
        keys = state.keys * kept + claimed.unsqueeze(-1) * key.unsqueeze(1)
        values = state.values * kept + claimed.unsqueeze(-1) * value.unsqueeze(1)
        write_weights = claimed * gate.unsqueeze(-1)  # (B, N)
        presence = state.presence * (1 - claimed) + write_weights
        queue = torch.remainder(state.queue - 1, self.slots)  # the claimed slot goes last
        return keys, values, presence, queue, write_weights

    def run_sequence(self, interfaces: Tensor, state: KVState) -> tuple[Tensor, KVState]:
        """``T`` steps at once: every step's read as one attention over the slots of
        ``state`` and the sequence's own writes, each step seeing exactly the slots that
        step-by-step :meth:`forward` would see (the same reads, to rounding).

        Step ``t`` (from 0) sees a slot of ``state`` whose queue place ``q`` is above
        ``t`` (it is overwritten at step ``q``), and the write of step ``j`` when
        ``j <= t < j + N`` (reading after the write; ``j < t <= j + N`` with
        ``read_before_write``). The state after the last step is built in closed form:
        the slot with queue place ``q < T`` last took the write of step
        ``q + N ⌊(T - 1 - q) / N⌋``, the others keep their contents, every place moves
        down by ``T`` (mod ``N``), and the last step's attention weights are gathered
        back onto the slots that held what it read.

        Args:
            interfaces: ``(T, B, interface_size)``.
            state: the :class:`KVState` before the first step.

        Returns:
            ``(reads, state)``: ``(T, B, R W)`` and the :class:`KVState` after step ``T``.
        """
        steps, batch = interfaces.shape[:2]
        key, value, gate, queries = self._split(interfaces.transpose(0, 1))  # batch first
        t = torch.arange(steps, device=interfaces.device)
        now, then = t.view(steps, 1), t.view(1, steps)
        place = state.queue.unsqueeze(1)  # (B, 1, N)
        if self.config.read_before_write:
            old = place >= now  # (B, T, N)
            new = (then < now) & (now <= then + self.slots)  # (T, T)
        else:
            old = place > now
            new = (then <= now) & (now < then + self.slots)
        zero = torch.zeros((), dtype=interfaces.dtype, device=interfaces.device)
        presence = torch.cat(
            [
                torch.where(old, state.presence.unsqueeze(1), zero),
                torch.where(new, gate.unsqueeze(1), zero),
            ],
            dim=-1,
        )  # (B, T, N + T): what each step sees
        heads, n = self.read_heads, self.slots
        reads, weights = self._read(
            queries.reshape(batch, steps * heads, self.key_size),
            torch.cat([state.keys, key], dim=1),
            torch.cat([state.values, value], dim=1),
            presence.repeat_interleave(heads, dim=1),
        )  # (B, T R, W), (B, T R, N + T)
        reads = reads.reshape(batch, steps, self.read_size).transpose(0, 1)

        # The state after the last step.
        place = state.queue  # (B, N)
        written = place < steps
        last = torch.where(
            written, place + n * torch.div(steps - 1 - place, n, rounding_mode="floor"), 0
        )

        def settle(old: Tensor, new: Tensor) -> Tensor:
            """Each slot's content after the sequence: its last write, or ``old``."""
            picked = new.gather(
                1, last.view(*last.shape, *[1] * (new.dim() - 2)).expand(-1, -1, *new.shape[2:])
            )
            return torch.where(written.view(*written.shape, *[1] * (old.dim() - 2)), picked, old)

        claimed = (place == (steps - 1) % n).to(interfaces.dtype)  # the last step's slot
        slot_of_place = torch.argsort(place, dim=-1)  # (B, N): the slot at each place
        target = slot_of_place[:, t % n].unsqueeze(1).expand(-1, heads, -1)  # (B, R, T)
        last_weights = weights[:, -heads:]  # (B, R, N + T)
        read_weights = last_weights[..., :n].scatter_add(2, target, last_weights[..., n:])
        final = KVState(
            keys=settle(state.keys, key),
            values=settle(state.values, value),
            presence=settle(state.presence, gate),
            queue=torch.remainder(place - steps, n),
            read_weights=read_weights,
            write_weights=(claimed * gate[:, -1:]).unsqueeze(1),
        )
        return reads, final

    def _read(
        self, queries: Tensor, keys: Tensor, values: Tensor, presence: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The heads' reads ``(B, R, W)`` (with ``read_query``, ``u^{K+1}``) and the
        last hop's attention weights ``(B, R, N)`` over the given slots; ``presence``
        is ``(B, N)`` or, one row per head, ``(B, R, N)``."""
        c = self.config
        gates = (self.gate_weight, self.gate_bias) if c.hop_gates else None
        if c.hop_embeddings == "adjacent":
            b, n = keys.shape[:2]
            embeddings = torch.cat(
                [keys.unsqueeze(2), values.reshape(b, n, c.hops, self.width)], dim=2
            )  # (B, N, K + 1, D)
            reads, weights = adjacent_hop_attention(
                queries, embeddings, presence, c.hops, c.eps, self.linear, c.scaled_scores, gates
            )
        else:
            reads, weights = multi_hop_attention(
                queries, keys, values, presence, c.hops, c.eps, self.linear, c.scaled_scores, gates
            )
        if c.read_query:
            reads = reads + queries  # u^{K+1} = u^1 + sum_k o^k
        return reads, weights

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
