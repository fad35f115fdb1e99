"""Sparse Access Memory (SAM): reads and writes that touch K slots of a very large memory.

Rae, Hunt, Harley, Danihelka, Senior, Wayne, Graves & Lillicrap (2016), "Scaling
Memory-Augmented Neural Networks with Sparse Reads and Writes", NIPS 2016,
arXiv:1610.09027, section 3. A step of ``sam`` (write first, then read, so a read at
step ``t`` sees step ``t``'s write, as in the ``ntm`` memory):

Write (section 3.2; the write weighting of Santoro et al. 2016's LRUA, made sparse).
The write weighting mixes the locations the read heads attended to at the previous
step and the least recently accessed slot, and that slot is erased before it is
written::

    w^W_t   = alpha_t [ gamma_t w^R_{t-1} + (1 - gamma_t) I^U_t ]
    M_t     = (1 - R_t) o M_{t-1} + A_t,   R_t = I^U_t 1^T,   A_t = w^W_t a_t^T

with the write gate ``alpha_t`` and the interpolation gate ``gamma_t`` in ``(0, 1)``
(sigmoids), the word ``a_t = tanh(.)`` and ``I^U_t`` the one-hot of the least recently
accessed slot (:mod:`nma_plugins.memories.sam_usage`). ``w^R_{t-1}`` has ``R K``
non-zero entries and ``I^U_t`` one, so a write touches at most ``R K + 1`` slots. With
several read heads, ``w^R_{t-1}`` is their mean (so ``w^W_t`` sums to ``alpha_t``).

Read (section 3.1). Every read head ``r`` emits a key ``k`` and a strength
``beta = softplus(.)``; its weighting is the content weighting restricted to the K
slots ``S`` most similar to the key, found by exact search or by an approximate index
(section 3.5, :mod:`nma_plugins.memories.sam_index`)::

    w^R_t(i) = exp(beta K(k, M_t(i))) / sum_{j in S} exp(beta K(k, M_t(j)))   (i in S)
    r_t      = sum_{i in S} w^R_t(i) M_t(i)

(:func:`nma_plugins.addressing.topk.sparse_content_weights`).

Usage (section 3.2): a slot is accessed at step ``t`` when ``w^R_t(i) + w^W_t(i)``
exceeds ``delta`` (``access_threshold``); the least recently accessed slot is the one
whose last access is oldest (the paper's ``U^(2)``, time since the last access).

Cost (section 3.4). The memory matrix is a buffer kept outside autograd and updated
in place; only the rows written since the state was last detached are differentiable
(:mod:`nma_plugins.memories.sam_rows`). With the LSH index a step costs
``O(R K W + L (1 + P) c W + sqrt N + rows written since the last detach)`` time,
independent of ``N`` apart from the ``O(sqrt N)`` search for the least recently
accessed slot; :meth:`SAMMemory.initial_state` allocates ``O(N W)`` once.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R`` for
read heads, ``K`` for the slots each read head attends to, ``E = R K + 1`` for the
slots a write touches and ``L`` for the rows written since the last detach.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from torch import Tensor

from nma import AddressingFactory, Memory, Options
from nma_plugins.addressing.topk import sparse_content_weights
from nma_plugins.memories.sam_index import LSHIndex, exact_search
from nma_plugins.memories.sam_rows import append_rows, drop_rows, gather_rows
from nma_plugins.memories.sam_usage import initial_times, least_recent, record_access

EXACT_UP_TO = 8192
"""With ``index = "auto"``, memories of at most this many slots use exact search."""


_LOG_LENGTH = "_sam_log_length"
"""Attribute set on ``row_of_slot`` (a Python int, no device access): the length of the
log it refers to, so that a step run on an outdated state is detected."""


def _check_newest(state: SAMState) -> None:
    """Refuse a step on a state that later steps have already updated in place.

    ``row_of_slot`` records the length of the log it was last left pointing into; a
    state whose ``rows`` are shorter or longer is outdated. A detached or cloned state
    holds new tensor objects without the record and is accepted.

    Raises:
        RuntimeError: when ``state`` is not the newest state of its sequence.
    """
    expected = getattr(state.row_of_slot, _LOG_LENGTH, None)
    if expected is not None and expected != state.rows.shape[1]:
        raise RuntimeError(
            "SAMMemory updates its memory, maps, usage and index in place, so a step must "
            "run on the newest state of a sequence. Running steps again from an earlier "
            "state is not supported: activation checkpointing (train.recompute_chunk > 0) "
            "does that. To branch from a state, clone it first "
            "(nma.map_state(torch.clone, state))."
        )


class SAMState(NamedTuple):
    """The recurrent state of :class:`SAMMemory` after a step.

    The tensors marked *in place* are shared by successive states and modified in
    place by every step (that is what keeps a step's cost independent of ``N``):
    keep a ``clone`` of them to keep a snapshot. The others are new every step.

    Attributes:
        memory: ``(B, N, W)`` the memory matrix ``M_t``, outside autograd (*in place*).
        rows: ``(B, L, W)`` differentiable values of the rows written since the state
            was last detached (see :mod:`nma_plugins.memories.sam_rows`).
        slot_of_row: ``(B, L)`` int64, the slot of every row of ``rows``.
        row_of_slot: ``(B, N)`` int64, every slot's newest row in ``rows`` or ``-1``
            (*in place*).
        times: ``(B, G S)`` int64, the step of every slot's last access, ``-1`` for
            never, padded to whole blocks (*in place*; see
            :mod:`nma_plugins.memories.sam_usage`).
        block_min: ``(B, G)`` int64, the minimum of ``times`` over every block of
            ``S`` slots (*in place*).
        table: ``(B, Lt, 2^b c + 1)`` int32 LSH tables (*in place*); ``(B, 0, 1)``
            with exact search.
        fill: ``(B, Lt, 2^b)`` int64 LSH ring counters (*in place*); ``(B, 0, 0)``
            with exact search.
        step: ``(B,)`` int64, the number of steps taken.
        read_indices: ``(B, R, K)`` int64, the slots each read head read.
        read_weights: ``(B, R, K)`` their weights ``w^R_t`` (each row sums to 1).
        write_indices: ``(B, E)`` int64, the slots written: the ``R K`` previous read
            slots, then the least recently accessed slot (repeats possible).
        write_weights: ``(B, E)`` their write weights ``w^W_t`` (a repeated slot's
            weight is the sum of its entries).
    """

    memory: Tensor
    rows: Tensor
    slot_of_row: Tensor
    row_of_slot: Tensor
    times: Tensor
    block_min: Tensor
    table: Tensor
    fill: Tensor
    step: Tensor
    read_indices: Tensor
    read_weights: Tensor
    write_indices: Tensor
    write_weights: Tensor


class SAMMemory(Memory):
    """Sparse Access Memory (Rae et al. 2016): K-sparse reads, sparse LRU writes.

    Interface layout, per step and per batch element (``interface_size`` values)::

        [ read_0 | ... | read_{R-1} | word | alpha | gamma ]

        read_r   W + 1 values: the key (W, unconstrained) and the key strength
                 (1, through softplus, >= 0) of read head r
        word     W values: the word a_t written (through tanh, in [-1, 1])
        alpha    1 value: the write gate (through a sigmoid)
        gamma    1 value: the interpolation gate between the previous read
                 locations and the least recently accessed slot (sigmoid)

    so ``interface_size = R (W + 1) + W + 2``. A step returns the ``R`` read vectors
    concatenated, ``read_size = R W``.

    The memory starts at zero. It takes no ``--addressing`` plugin: its reads are the
    sparse counterpart of the ``topk`` scheme, evaluated on the K rows its index
    finds, which the dense :class:`nma.Addressing` contract cannot express.

    Args:
        config: a :class:`SAMMemory.Config`.
        addressing: unused; must be ``None``.
    """

    class Config(Options):
        """Options of the Sparse Access Memory."""

        slots: int = Field(1024, ge=1, description="N: the number of memory slots (rows).")
        width: int = Field(20, ge=1, description="W: the width of one slot (columns).")
        read_heads: int = Field(1, ge=1, description="R: read heads, each returns W values.")
        sparse_reads: int = Field(
            4,
            ge=1,
            description="K: slots each read head attends to (the K most similar); K <= slots.",
        )
        index: Literal["auto", "exact", "lsh"] = Field(
            "auto",
            description=(
                "How the K most similar slots are found: 'exact' (O(N) per step), 'lsh' "
                f"(approximate, cost independent of N) or 'auto' (exact up to {EXACT_UP_TO} "
                "slots, lsh above)."
            ),
        )
        lsh_tables: int = Field(8, ge=1, description="LSH: independent hash tables.")
        lsh_bits: int = Field(
            0,
            ge=0,
            le=30,
            description=(
                "LSH: hyperplanes per table (2^bits buckets); 0 picks "
                "ceil(log2(slots / lsh_bucket_size)), at least 1."
            ),
        )
        lsh_bucket_size: int = Field(
            16, ge=1, description="LSH: slot numbers per bucket; a full bucket drops its oldest."
        )
        lsh_probes: int = Field(
            2,
            ge=0,
            description="LSH: extra buckets probed per table (multi-probe); capped at the bits.",
        )
        lsh_seed: int = Field(
            0,
            ge=0,
            description=(
                "LSH: seed of the random hyperplanes (the same options give the same index "
                "in every run, so saved memory states stay searchable)."
            ),
        )
        access_threshold: float = Field(
            0.005,
            ge=0,
            description=(
                "delta: a slot counts as accessed when its read plus write weight exceeds "
                "this (the least recently accessed slot is the next one written)."
            ),
        )
        eps: float = Field(
            1e-6,
            gt=0,
            description="Added to |k||M(i)| in the cosine similarity so zero rows stay finite.",
        )

        @model_validator(mode="after")
        def _fits(self) -> SAMMemory.Config:
            if self.sparse_reads > self.slots:
                raise ValueError(
                    f"sparse_reads (K = {self.sparse_reads}) cannot exceed slots (N = {self.slots})"
                )
            return self

    default_addressing = None
    rerunnable = False  # the memory, maps and index are updated in place
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is not None:
            raise ValueError("SAMMemory takes no addressing scheme (its reads are top-K).")
        self.slots = config.slots
        self.width = config.width
        self.read_heads = config.read_heads
        self.sparse_reads = config.sparse_reads
        self.write_slots = self.read_heads * self.sparse_reads + 1
        self.interface_size = self.read_heads * (self.width + 1) + self.width + 2
        self.read_size = self.read_heads * self.width
        use_lsh = config.index == "lsh" or (config.index == "auto" and self.slots > EXACT_UP_TO)
        self.index: LSHIndex | None = None
        if use_lsh:
            bits = config.lsh_bits or max(
                1, math.ceil(math.log2(max(self.slots / config.lsh_bucket_size, 1.0)))
            )
            probes = min(config.lsh_probes, bits)
            self.index = LSHIndex(
                self.width, config.lsh_tables, bits, config.lsh_bucket_size, probes, config.lsh_seed
            )

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> SAMState:
        """The state before the first step: a zero memory, nothing accessed yet.

        Allocates the ``(B, N, W)`` memory, the ``(B, N)`` maps and stamps and, with
        LSH, the tables: ``O(N)`` time and space, once per sequence.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            A :class:`SAMState` with ``memory`` zero, no logged rows, every slot never
            accessed, step 0, and previous reads on slots ``0..K-1`` with weight 0 (so
            the first write goes to the least recently accessed slot only).
        """
        b, n, w, r, k = batch_size, self.slots, self.width, self.read_heads, self.sparse_reads
        memory = torch.zeros(b, n, w, device=device, dtype=dtype)
        times, block_min = initial_times(b, n, device)
        if self.index is not None:
            table, fill = self.index.empty(b, device)
        else:
            table = torch.zeros(b, 0, 1, dtype=torch.int32, device=device)
            fill = torch.zeros(b, 0, 0, dtype=torch.int64, device=device)
        read_indices = torch.arange(k, device=device).expand(b, r, k).clone()
        e = self.write_slots
        return SAMState(
            memory=memory,
            rows=torch.zeros(b, 0, w, device=device, dtype=dtype),
            slot_of_row=torch.zeros(b, 0, dtype=torch.int64, device=device),
            row_of_slot=torch.full((b, n), -1, dtype=torch.int64, device=device),
            times=times,
            block_min=block_min,
            table=table,
            fill=fill,
            step=torch.zeros(b, dtype=torch.int64, device=device),
            read_indices=read_indices,
            read_weights=torch.zeros(b, r, k, device=device, dtype=dtype),
            write_indices=torch.zeros(b, e, dtype=torch.int64, device=device),
            write_weights=torch.zeros(b, e, device=device, dtype=dtype),
        )

    def load_memory(self, state: SAMState, contents: Tensor) -> SAMState:
        """A state like ``state`` whose memory holds ``contents`` (and is indexed).

        For tests and for starting from a filled memory. ``O(N)``. The returned state
        has no logged rows; its access times and previous reads are ``state``'s.

        Args:
            state: a state of this memory, e.g. from :meth:`initial_state`.
            contents: ``(B, N, W)`` the memory rows.

        Returns:
            A new :class:`SAMState` (``state``'s in-place tensors are not modified).
        """
        batch = contents.shape[0]
        memory = contents.detach().to(state.memory.dtype).clone()
        table, fill = state.table, state.fill
        if self.index is not None:
            table, fill = self.index.empty(batch, memory.device)
            slots = torch.arange(self.slots, device=memory.device).expand(batch, -1)
            self.index.insert(table, fill, slots, memory)
        return state._replace(
            memory=memory,
            rows=state.rows.detach()[:, :0],
            slot_of_row=state.slot_of_row[:, :0],
            row_of_slot=torch.full_like(state.row_of_slot, -1),
            times=state.times.clone(),
            block_min=state.block_min.clone(),
            table=table,
            fill=fill,
        )

    def forward(self, interface: Tensor, state: SAMState) -> tuple[Tensor, SAMState]:
        """Write (section 3.2), then read (section 3.1), then record the accesses.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`SAMState`; its in-place tensors are updated.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)`` are the read vectors of the heads
            concatenated; ``state`` is the new :class:`SAMState`.
        """
        batch = interface.shape[0]
        r, k, w = self.read_heads, self.sparse_reads, self.width
        memory, row_of_slot = state.memory, state.row_of_slot
        rows, slot_of_row = state.rows, state.slot_of_row
        _check_newest(state)
        if not rows.requires_grad and rows.shape[1] > 0:
            # Detached (truncated BPTT) or no_grad: the log can no longer carry
            # gradients and the buffer already holds its values.
            rows, slot_of_row = drop_rows(rows, slot_of_row, row_of_slot)

        heads = interface[:, : r * (w + 1)].reshape(batch, r, w + 1)
        keys = heads[..., :w]  # (B, R, W)
        strengths = F.softplus(heads[..., w:])  # (B, R, 1)
        rest = interface[:, r * (w + 1) :]
        word = torch.tanh(rest[:, :w])  # (B, W)
        alpha = torch.sigmoid(rest[:, w : w + 1])  # (B, 1)
        gamma = torch.sigmoid(rest[:, w + 1 : w + 2])  # (B, 1)

        # Write weighting over E = R K + 1 entries: previous reads, then the LRA slot.
        lra = least_recent(state.times, state.block_min)  # (B,)
        write_indices = torch.cat([state.read_indices.reshape(batch, r * k), lra[:, None]], 1)
        previous = state.read_weights.reshape(batch, r * k) / r
        entries = alpha * torch.cat([gamma * previous, 1 - gamma], dim=1)  # (B, E)
        # A slot listed twice gets the sum of its entries' weights in every entry, so
        # all its entries compute the same new row (the dense w^W_t(i)).
        same = (write_indices.unsqueeze(2) == write_indices.unsqueeze(1)).to(entries.dtype)
        write_weights = torch.matmul(same, entries.unsqueeze(2)).squeeze(2)
        keep = (write_indices != lra[:, None]).to(word.dtype)  # 1 - R_t: erase the LRA slot
        old = gather_rows(memory, rows, row_of_slot, write_indices)  # (B, E, W)
        new = old * keep.unsqueeze(2) + write_weights.unsqueeze(2) * word.unsqueeze(1)
        rows, slot_of_row = append_rows(rows, slot_of_row, row_of_slot, memory, write_indices, new)
        if not rows.requires_grad:  # no_grad (evaluation): nothing to differentiate, no log
            rows, slot_of_row = drop_rows(rows, slot_of_row, row_of_slot)
        if self.index is not None:
            self.index.insert(state.table, state.fill, write_indices, new.detach())

        # Sparse read from M_t.
        if self.index is None:
            read_indices = exact_search(memory, keys.detach(), k, self.config.eps)
        else:
            read_indices = self.index.search(
                state.table, memory, keys.detach(), state.read_indices, k, self.config.eps
            )
        selected = gather_rows(memory, rows, row_of_slot, read_indices.reshape(batch, r * k))
        selected = selected.reshape(batch, r, k, w)
        read_weights = sparse_content_weights(keys, strengths, selected, self.config.eps)
        reads = torch.matmul(read_weights.unsqueeze(2), selected).squeeze(2)  # (B, R, W)

        with torch.no_grad():
            record_access(
                state.times,
                state.block_min,
                torch.cat([read_indices.reshape(batch, r * k), write_indices], dim=1),
                torch.cat([read_weights.reshape(batch, r * k), entries], dim=1).detach(),
                state.step,
                self.config.access_threshold,
            )
        new_state = state._replace(
            rows=rows,
            slot_of_row=slot_of_row,
            step=state.step + 1,
            read_indices=read_indices,
            read_weights=read_weights,
            write_indices=write_indices,
            write_weights=write_weights,
        )
        setattr(row_of_slot, _LOG_LENGTH, rows.shape[1])
        return reads.reshape(batch, self.read_size), new_state

    def inspect(self, state: SAMState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did, as dense tensors for plots.

        Building the dense weightings costs ``O(N)``; ``memory`` and ``last_access``
        are views of the live in-place tensors (clone them to keep a snapshot).

        Returns:
            ``{"read_weights": (B, R, N), "write_weights": (B, 1, N),
            "memory": (B, N, W), "last_access": (B, N)}``, and the sparse form:
            ``"read_indices": (B, R, K)``, ``"write_indices": (B, E)``. ``last_access``
            is the step of every slot's last access (``-1``: never), as floats.
        """
        batch, n = state.memory.shape[0], self.slots
        reads = state.read_weights.detach()
        read_dense = reads.new_zeros(batch, self.read_heads, n)
        read_dense.scatter_(2, state.read_indices, reads)
        # A repeated write slot carries its total weight in every entry: count it once.
        writes = state.write_weights.detach()
        write_dense = writes.new_zeros(batch, n).scatter_(1, state.write_indices, writes)
        return {
            "read_weights": read_dense,
            "write_weights": write_dense.unsqueeze(1),
            "memory": state.memory,
            "last_access": state.times[:, :n].to(state.memory.dtype),
            "read_indices": state.read_indices,
            "write_indices": state.write_indices,
        }
