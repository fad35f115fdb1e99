"""The sparse Differentiable Neural Computer (SDNC): a DNC whose accesses touch K slots.

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016: section 3 (Sparse Access Memory: sparse reads, sparse writes,
usage) and the SDNC section of the supplementary material (the DNC of Graves et al.
2016 with SAM's sparse reads and writes and a sparse temporal link matrix). Every
read and write weighting has at most ``K`` non-zero entries (``sparse_reads``), each
link row at most ``K_L`` (``link_entries``); nothing of size ``N x N`` is ever built,
so memories of hundreds of thousands of slots fit.

One step, for one batch element (``w^r_{t-1}`` the previous read weightings, ``R``
heads):

    U      = argmin_i u_{t-1}(i)                          least recently used slot
    w^w_t  = top_K( alpha (gamma mean_h w^{r,h}_{t-1} + (1 - gamma) 1_U) )
                                                          sparse write weighting (SAM)
    M_t    = M'_{t-1} o (E - w^w_t e^T) + w^w_t v^T,      M' = M_{t-1} with row U zeroed
    p_t, L_t (sparse; see sdnc_linkage.py),  f^h = L_t w^{r,h}_{t-1},  b^h = L_t^T w^{r,h}_{t-1}
    c^h    = top_K(C(M_t, k^h, beta^h)), renormalised to sum to 1   sparse content read
    w^{r,h}_t = top_K( pi^h[1] b^h + pi^h[2] c^h + pi^h[3] f^h )     sparse read weighting
    r^h_t  = M_t^T w^{r,h}_t
    u_t    = 1 where accessed (weight > delta), else lambda u_{t-1}  (see sdnc_usage.py)

``top_K`` keeps the ``K`` largest entries (exactly, over the union of the candidates'
slots; see :func:`nma_plugins.memories.sdnc_sparse.coalesce`).

Choices where the paper leaves details open (documented in docs/memories.md, section sdnc):

* the previous read locations of ``R`` heads enter the write as their mean, so the
  write weighting sums to at most 1 (as the DNC's temporal linkage requires);
* the write keeps the DNC's erase vector ``e`` on the written slots, and also clears
  the least recently used row entirely before writing (SAM's erase of the least used
  word), so a new write lands in an empty slot;
* the mixed read weighting is truncated to its ``K`` largest entries but not
  renormalised (the DNC's read weightings sum to at most 1 as well);
* the content lookup goes through the addressing scheme the user picks
  (``content`` by default) on all ``N`` slots, and keeps its ``K`` largest weights
  (exact ``torch.topk``, ``O(N W)`` per head; the paper uses an approximate
  nearest-neighbour index instead);
* usage is SAM's time since the last access, kept in ``[0, 1]`` as ``lambda^tau``.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R`` for
read heads, ``K`` for the entries of a sparse weighting, ``E = K_L`` for the entries
of a link row and ``P`` for the per-head parameters of the addressing scheme.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import torch
from pydantic import Field, model_validator
from torch import Tensor

from nma import AddressingFactory, Memory, Options
from nma_plugins.memories.dnc import oneplus_strength
from nma_plugins.memories.sdnc_linkage import (
    SparseLinks,
    sparse_directional_weightings,
    sparse_update_link,
    sparse_update_precedence,
)
from nma_plugins.memories.sdnc_sparse import (
    coalesce,
    densify,
    gather_rows,
    scatter_rows,
)
from nma_plugins.memories.sdnc_usage import least_used, update_usage


class SparseDNCState(NamedTuple):
    """The recurrent state of :class:`SparseDNCMemory` after a step.

    Sparse weightings are (indices, values) pairs of fixed size; the dense weighting
    adds up the values per index (repeated indices only ever carry value 0).

    Attributes:
        memory: ``(B, N, W)`` the memory matrix ``M_t``.
        usage: ``(B, N)`` recency of access ``u_t`` in ``[0, 1]`` (no gradient).
        link_indices: ``(B, N, E)`` int64, columns of the rows of ``L_t``.
        link_values: ``(B, N, E)`` their values (``L_t[i, link_indices[i, e]]``).
        link_t_indices: ``(B, N, E)`` int64, columns of the rows of ``L_t^T``.
        link_t_values: ``(B, N, E)`` their values.
        precedence_indices: ``(B, E)`` int64, slots of the precedence ``p_t``.
        precedence_values: ``(B, E)`` its values.
        read_indices: ``(B, R, K)`` int64, slots of the read weightings ``w^{r,h}_t``.
        read_values: ``(B, R, K)`` their values.
        write_indices: ``(B, 1, K)`` int64, slots of the write weighting ``w^w_t``.
        write_values: ``(B, 1, K)`` its values.
    """

    memory: Tensor
    usage: Tensor
    link_indices: Tensor
    link_values: Tensor
    link_t_indices: Tensor
    link_t_values: Tensor
    precedence_indices: Tensor
    precedence_values: Tensor
    read_indices: Tensor
    read_values: Tensor
    write_indices: Tensor
    write_values: Tensor


class SparseDNCInterface(NamedTuple):
    """One step's interface vector, split and constrained.

    Attributes:
        read_params: ``{name: (B, R, size)}`` the read heads' addressing parameters
            (for ``content``: ``key`` and ``strength >= 1``, oneplus).
        erase: ``(B, W)`` erase vector ``e`` in ``(0, 1)`` (sigmoid).
        write_vector: ``(B, W)`` write vector ``v`` (unconstrained).
        interpolation_gate: ``(B, 1)`` ``gamma`` in ``(0, 1)`` (sigmoid): write to the
            previously read slots (1) or to the least recently used one (0).
        write_gate: ``(B, 1)`` ``alpha`` in ``(0, 1)`` (sigmoid).
        read_modes: ``(B, R, 3)`` ``pi^h`` (softmax): backward, content, forward.
    """

    read_params: dict[str, Tensor]
    erase: Tensor
    write_vector: Tensor
    interpolation_gate: Tensor
    write_gate: Tensor
    read_modes: Tensor


def sparse_write_weighting(
    read_indices: Tensor,
    read_values: Tensor,
    lru: Tensor,
    interpolation_gate: Tensor,
    write_gate: Tensor,
    k: int,
    slots: int,
) -> tuple[Tensor, Tensor]:
    """``w^w = top_K(alpha (gamma mean_h w^{r,h}_{t-1} + (1 - gamma) 1_U))`` (SAM's write).

    Args:
        read_indices: ``(B, R, K)`` slots of the previous read weightings.
        read_values: ``(B, R, K)`` their values.
        lru: ``(B,)`` the least recently used slot ``U``.
        interpolation_gate: ``(B, 1)`` ``gamma``.
        write_gate: ``(B, 1)`` ``alpha``.
        k: ``K``.
        slots: ``N``.

    Returns:
        ``(indices, values)``, each ``(B, K)``: distinct slots, values summing to at
        most ``alpha``.
    """
    batch, heads, _ = read_indices.shape
    previous = read_values.reshape(batch, -1) / heads  # (B, R K)
    indices = torch.cat([read_indices.reshape(batch, -1), lru.unsqueeze(-1)], dim=-1)
    values = write_gate * torch.cat([interpolation_gate * previous, 1 - interpolation_gate], dim=-1)
    return coalesce(indices, values, k, slots)


def sparse_write(
    memory: Tensor,
    lru: Tensor,
    write_indices: Tensor,
    write_values: Tensor,
    erase: Tensor,
    values: Tensor,
) -> Tensor:
    """Clear the least used row, then erase and add on the written rows.

    ``M'`` is ``M_{t-1}`` with row ``U`` set to zero; then, for the written slots ``i``,
    ``M_t[i] = M'[i] o (1 - w[i] e) + w[i] v``; other rows are unchanged.

    Args:
        memory: ``(B, N, W)`` ``M_{t-1}``.
        lru: ``(B,)`` the least recently used slot ``U``.
        write_indices: ``(B, K)`` distinct written slots.
        write_values: ``(B, K)`` their weights ``w[i]``.
        erase: ``(B, W)`` erase vector ``e``.
        values: ``(B, W)`` write vector ``v``.

    Returns:
        ``(B, N, W)`` ``M_t``.
    """
    batch, _, width = memory.shape
    cleared = scatter_rows(memory, lru.unsqueeze(-1), memory.new_zeros(batch, 1, width))
    rows = gather_rows(cleared, write_indices)  # (B, K, W)
    w = write_values.unsqueeze(-1)  # (B, K, 1)
    new_rows = rows * (1 - w * erase.unsqueeze(1)) + w * values.unsqueeze(1)
    return scatter_rows(cleared, write_indices, new_rows)


def sparse_content(dense: Tensor, k: int, eps: float) -> tuple[Tensor, Tensor]:
    """Keep the ``K`` largest content weights and renormalise them to sum to 1.

    Args:
        dense: ``(B, R, N)`` content weightings (rows summing to 1).
        k: ``K``.
        eps: lower bound of the divisor (it is at least ``K / N`` for a distribution).

    Returns:
        ``(indices, values)``, each ``(B, R, K)``.
    """
    top = dense.topk(k, dim=-1)
    return top.indices, top.values / top.values.sum(dim=-1, keepdim=True).clamp_min(eps)


def sparse_read_weighting(
    backward: tuple[Tensor, Tensor],
    content: tuple[Tensor, Tensor],
    forward: tuple[Tensor, Tensor],
    modes: Tensor,
    k: int,
    slots: int,
) -> tuple[Tensor, Tensor]:
    """``w^{r,h} = top_K(pi^h[1] b^h + pi^h[2] c^h + pi^h[3] f^h)``, not renormalised.

    Args:
        backward: ``(indices, values)``, each ``(B, R, Cb)``: ``b^h``.
        content: ``(indices, values)``, each ``(B, R, K)``: ``c^h``.
        forward: ``(indices, values)``, each ``(B, R, Cf)``: ``f^h``.
        modes: ``(B, R, 3)`` read modes (backward, content, forward).
        k: ``K``.
        slots: ``N``.

    Returns:
        ``(indices, values)``, each ``(B, R, K)``.
    """
    indices = torch.cat([backward[0], content[0], forward[0]], dim=-1)
    values = torch.cat(
        [
            modes[..., 0:1] * backward[1],
            modes[..., 1:2] * content[1],
            modes[..., 2:3] * forward[1],
        ],
        dim=-1,
    )
    return coalesce(indices, values, k, slots)


class SparseDNCMemory(Memory):
    """The sparse DNC (Rae et al. 2016, SDNC): K-sparse reads and writes, sparse links.

    Interface layout, per step and per batch element (``interface_size`` values)::

        [ read_0 | ... | read_{R-1} | erase | write_vector | interpolation_gate
          | write_gate | read_modes ]

        read_h              P values: read head h's addressing parameters, in the
                            order of ``addressing.params`` (``content``: key W,
                            strength 1 -> oneplus)
        erase               W values, sigmoid                        e
        write_vector        W values, unconstrained                  v
        interpolation_gate  1 value, sigmoid                         gamma
        write_gate          1 value, sigmoid                         alpha
        read_modes          3R values: per head (backward, content, forward), softmax

    so ``interface_size = R P + 2 W + 3 R + 2`` (with ``content``: ``R (W + 1) + 2 W +
    3 R + 2``). There is no write key, no free gates and no allocation gate: the
    write goes to the previously read slots or to the least recently used one
    (SAM). A step returns the ``R`` read vectors concatenated, ``read_size = R W``.

    Initial state: memory, usage and all values zero; sparse indices point at slots
    ``0..K-1`` (weightings, precedence) or at the row's own slot (link rows), all
    with value 0.

    Args:
        config: a :class:`SparseDNCMemory.Config`.
        addressing: a factory ``factory(width, heads)`` for the content lookup.

    Raises:
        ValueError: when ``addressing`` is ``None``.
    """

    class Config(Options):
        """Options of the sparse DNC memory."""

        slots: int = Field(1024, ge=1, description="N: the number of memory slots (rows).")
        width: int = Field(20, ge=1, description="W: the width of one slot (columns).")
        read_heads: int = Field(2, ge=1, description="R: read heads, each returns W values.")
        write_heads: int = Field(
            1, ge=1, le=1, description="Write heads: the SDNC has exactly one."
        )
        sparse_reads: int = Field(
            4,
            ge=1,
            description="K: non-zero entries of every read and write weighting (<= slots).",
        )
        link_entries: int = Field(
            8,
            ge=1,
            description=(
                "K_L: non-zero entries kept per row of the sparse link matrix and its "
                "transpose, and in the precedence (<= slots)."
            ),
        )
        usage_decay: float = Field(
            0.999,
            gt=0,
            lt=1,
            description=(
                "lambda: usage = lambda^(steps since the slot was last accessed); "
                "the least recently used slot has the lowest usage."
            ),
        )
        access_threshold: float = Field(
            0.005,
            ge=0,
            description=(
                "delta: a slot counts as accessed when its summed read and write weight "
                "exceeds this (SAM's threshold for a non-negligible access)."
            ),
        )
        eps: float = Field(
            1e-6,
            gt=0,
            description=(
                "Lower bound of the sum of the K kept content weights when they are "
                "renormalised (that sum is at least K/N for a distribution)."
            ),
        )

        @model_validator(mode="after")
        def _fits_in_memory(self) -> SparseDNCMemory.Config:
            if self.sparse_reads > self.slots:
                raise ValueError(
                    f"sparse_reads ({self.sparse_reads}) must not exceed slots ({self.slots})"
                )
            if self.link_entries > self.slots:
                raise ValueError(
                    f"link_entries ({self.link_entries}) must not exceed slots ({self.slots})"
                )
            return self

    default_addressing = "content"
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is None:
            raise ValueError(
                "SparseDNCMemory needs an addressing scheme (the default is 'content')."
            )
        self.slots = config.slots
        self.width = config.width
        self.read_heads = config.read_heads
        self.k = config.sparse_reads
        self.link_entries = config.link_entries
        self.addressing = addressing(config.width, config.read_heads)
        self.head_size = self.addressing.params_size
        r, w = config.read_heads, config.width
        self.interface_size = r * self.head_size + 2 * w + 3 * r + 2
        self.read_size = r * w

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> SparseDNCState:
        """The state before the first step: zero memory, usage and values.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            A :class:`SparseDNCState` (shapes in its docstring).
        """
        b, n, w, r, k, e = (
            batch_size,
            self.slots,
            self.width,
            self.read_heads,
            self.k,
            self.link_entries,
        )
        own_slot = torch.arange(n, device=device).view(1, n, 1).expand(b, n, e).clone()
        first = partial(torch.arange, device=device)
        zeros = partial(torch.zeros, device=device, dtype=dtype)
        return SparseDNCState(
            memory=zeros(b, n, w),
            usage=zeros(b, n),
            link_indices=own_slot,
            link_values=zeros(b, n, e),
            link_t_indices=own_slot.clone(),
            link_t_values=zeros(b, n, e),
            precedence_indices=first(e).expand(b, e).clone(),
            precedence_values=zeros(b, e),
            read_indices=first(k).expand(b, r, k).clone(),
            read_values=zeros(b, r, k),
            write_indices=first(k).expand(b, 1, k).clone(),
            write_values=zeros(b, 1, k),
        )

    def split_interface(self, interface: Tensor) -> SparseDNCInterface:
        """Cut the interface vector into its parts and constrain them.

        Args:
            interface: ``(B, interface_size)`` unconstrained, laid out as in the class
                docstring.

        Returns:
            A :class:`SparseDNCInterface`.
        """
        b, r, w = interface.shape[0], self.read_heads, self.width
        sizes = [r * self.head_size, w, w, 1, 1, 3 * r]
        raw_read, erase, values, gamma, alpha, modes = torch.split(interface, sizes, dim=-1)
        read_params = self.addressing.split(raw_read.reshape(b, r, self.head_size))
        return SparseDNCInterface(
            read_params=oneplus_strength(read_params),
            erase=torch.sigmoid(erase),
            write_vector=values,
            interpolation_gate=torch.sigmoid(gamma),
            write_gate=torch.sigmoid(alpha),
            read_modes=torch.softmax(modes.reshape(b, r, 3), dim=-1),
        )

    def forward(self, interface: Tensor, state: SparseDNCState) -> tuple[Tensor, SparseDNCState]:
        """Write to the previous read slots or the least used one, link, then read.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs.
            state: the previous :class:`SparseDNCState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)``, the read vectors concatenated,
            and the new :class:`SparseDNCState`.
        """
        batch, n, k = interface.shape[0], self.slots, self.k
        parts = self.split_interface(interface)

        # Write: previous read slots or the least recently used one.
        lru = least_used(state.usage)  # (B,)
        write_indices, write_values = sparse_write_weighting(
            state.read_indices,
            state.read_values,
            lru,
            parts.interpolation_gate,
            parts.write_gate,
            k,
            n,
        )
        memory = sparse_write(
            state.memory, lru, write_indices, write_values, parts.erase, parts.write_vector
        )

        # Sparse temporal linkage, from p_{t-1}; then the new precedence.
        links = sparse_update_link(
            SparseLinks(
                state.link_indices, state.link_values, state.link_t_indices, state.link_t_values
            ),
            write_indices,
            write_values,
            state.precedence_indices,
            state.precedence_values,
        )
        precedence_indices, precedence_values = sparse_update_precedence(
            state.precedence_indices, state.precedence_values, write_indices, write_values, n
        )

        # Read: backward, sparse content (on M_t) and forward, mixed and truncated.
        forward, backward = sparse_directional_weightings(
            links, state.read_indices, state.read_values
        )
        previous = densify(state.read_indices, state.read_values, n)  # (B, R, N)
        content = sparse_content(
            self.addressing(parts.read_params, memory, previous), k, self.config.eps
        )
        read_indices, read_values = sparse_read_weighting(
            backward, content, forward, parts.read_modes, k, n
        )
        rows = gather_rows(memory, read_indices)  # (B, R, K, W)
        reads = (read_values.unsqueeze(-1) * rows).sum(dim=-2)  # (B, R, W)

        usage = update_usage(
            state.usage,
            torch.cat([write_indices, read_indices.reshape(batch, -1)], dim=-1),
            torch.cat([write_values, read_values.reshape(batch, -1)], dim=-1),
            self.config.usage_decay,
            self.config.access_threshold,
        )
        new_state = SparseDNCState(
            memory=memory,
            usage=usage,
            link_indices=links.link_indices,
            link_values=links.link_values,
            link_t_indices=links.link_t_indices,
            link_t_values=links.link_t_values,
            precedence_indices=precedence_indices,
            precedence_values=precedence_values,
            read_indices=read_indices,
            read_values=read_values,
            write_indices=write_indices.unsqueeze(1),
            write_values=write_values.unsqueeze(1),
        )
        return reads.reshape(batch, self.read_size), new_state

    def inspect(self, state: SparseDNCState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did, with the weightings made dense.

        Returns:
            ``{"read_weights": (B, R, N), "write_weights": (B, 1, N), "usage": (B, N),
            "memory": (B, N, W), "precedence": (B, N)}``. (The link matrix is not
            returned: its dense form would be ``N x N``.)
        """
        n = self.slots
        return {
            "read_weights": densify(state.read_indices, state.read_values, n),
            "write_weights": densify(state.write_indices, state.write_values, n),
            "usage": state.usage,
            "memory": state.memory,
            "precedence": densify(state.precedence_indices, state.precedence_values, n),
        }

    def slot_usage(self, state: SparseDNCState) -> Tensor:
        """The usage (recency of access) ``u_t``, ``(B, N)`` in ``[0, 1]``."""
        return state.usage

    def reorder_slots(self, state: SparseDNCState, order: Tensor) -> SparseDNCState:
        """Move slot ``order[b, i]`` to position ``i``.

        Per-slot tensors (memory rows, usage, the rows of ``L`` and ``L^T``) are
        gathered in the new order, and every stored slot index (link columns,
        precedence, read and write weightings) is renamed to the slot's new position.
        The next step reads the same vectors, as long as the least-used slot is
        unique and the top-K selections have no ties.

        Args:
            state: a :class:`SparseDNCState`.
            order: ``(B, N)`` a permutation of the slots per batch element.

        Returns:
            The reordered :class:`SparseDNCState`.
        """
        batch, n = order.shape
        position = torch.empty_like(order).scatter_(
            1, order, torch.arange(n, device=order.device).expand(batch, n)
        )  # position[b, old slot] = new slot

        def rename(indices: Tensor) -> Tensor:
            return position.gather(1, indices.reshape(batch, -1)).reshape(indices.shape)

        def rows(table: Tensor) -> Tensor:
            return gather_rows(table, order)

        return SparseDNCState(
            memory=rows(state.memory),
            usage=state.usage.gather(1, order),
            link_indices=rename(rows(state.link_indices)),
            link_values=rows(state.link_values),
            link_t_indices=rename(rows(state.link_t_indices)),
            link_t_values=rows(state.link_t_values),
            precedence_indices=rename(state.precedence_indices),
            precedence_values=state.precedence_values,
            read_indices=rename(state.read_indices),
            read_values=state.read_values,
            write_indices=rename(state.write_indices),
            write_values=state.write_values,
        )

    def clear_slots(self, state: SparseDNCState, mask: Tensor) -> SparseDNCState:
        """Free the slots where ``mask`` is true.

        Their memory rows and usage become zero, and so does every stored value that
        involves them: their link rows (in ``L`` and ``L^T``), link entries pointing
        at them, and their entries in the precedence and the read and write
        weightings. With zero usage they are the first to be written.

        Args:
            state: a :class:`SparseDNCState`.
            mask: ``(B, N)`` bool, true for the slots to free.

        Returns:
            The new :class:`SparseDNCState`.
        """
        batch = mask.shape[0]
        keep = (~mask).to(state.usage.dtype)  # (B, N)

        def kept(indices: Tensor) -> Tensor:
            return keep.gather(1, indices.reshape(batch, -1)).reshape(indices.shape)

        row_keep = keep.unsqueeze(-1)  # (B, N, 1)
        return state._replace(
            memory=state.memory * row_keep,
            usage=state.usage * keep,
            link_values=state.link_values * row_keep * kept(state.link_indices),
            link_t_values=state.link_t_values * row_keep * kept(state.link_t_indices),
            precedence_values=state.precedence_values * kept(state.precedence_indices),
            read_values=state.read_values * kept(state.read_indices),
            write_values=state.write_values * kept(state.write_indices),
        )
