"""Least Recently Used Access (LRUA): the memory of the MANN for one-shot learning.

Santoro, Bartunov, Botvinick, Wierstra & Lillicrap (2016), "Meta-Learning with
Memory-Augmented Neural Networks", ICML, sections 3.1 and 3.2. Every read head emits
a key ``k_t`` and a gate parameter ``alpha``; with ``w^r`` its read weights,
``w^w`` its write weights, ``w^u`` the usage weights and ``w^lu`` the least-used
weights over the ``N`` slots:

    K(k_t, M_t(i)) = k_t . M_t(i) / (|k_t| |M_t(i)|)                  cosine      (eq. 2)
    w^r_t(i) = exp(K(k_t, M_t(i))) / sum_j exp(K(k_t, M_t(j)))        read weight (eq. 3)
    r_t = sum_i w^r_t(i) M_t(i)                                       read        (eq. 4)
    w^u_t = gamma w^u_{t-1} + w^r_t + w^w_t                           usage       (eq. 5)
    w^lu_t(i) = 1 if w^u_t(i) <= m(w^u_t, n) else 0                   least used  (eq. 6)
    w^w_t = sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}    write weight (eq. 7)
    M_t(i) = M_{t-1}(i) + w^w_t(i) k_t                                write       (eq. 8)

``m(v, n)`` is the ``n``-th smallest element of ``v`` and ``n`` the number of reads
(read heads). Before the write of eq. (8), "the least used memory location is
computed from w^u_{t-1} and is set to zero" (section 3.2, above eq. 8).

What this module does where the paper leaves room (see docs/memories.md, section lrua):

* Ties in eq. (6): exactly ``n`` slots are marked, the first ``n`` of a *stable*
  ascending sort of the usage, so among slots of equal usage the lower index wins
  (the paper's ``<=`` would mark every tied slot, all ``N`` at the start).
* Erasure: by default (``erase="all"``) every slot with ``w^lu_{t-1}(i) = 1`` is
  zeroed; ``erase="one"`` zeroes only the least used one, the first of the sort.
* Several read heads: each head ``h`` has its own key ``k_h`` and gate ``alpha_h``,
  reads by eqs. (2)-(4), and writes its key by eqs. (7)-(8); the writes add up, and
  eq. (5) adds every head's read and write weights to the usage.
* The read lookup is an addressing plugin (``content`` by default: NTM eqs. 5-6,
  i.e. eqs. 2-3 with a learned key strength ``beta``; ``beta = 1`` is the paper's).
* Order within a step: erase, write (eqs. 7-8, from the state of step ``t-1``), then
  address and read the written memory ``M_t`` (eqs. 2-4), then the usage (eq. 5).

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width, ``R`` for
read heads and ``P`` for the per-head parameters of the addressing scheme.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
from pydantic import Field
from torch import Tensor

from nma import Addressing, AddressingFactory, Memory, Options
from nma_plugins.addressing.content import ContentAddressing


class LRUAState(NamedTuple):
    """The recurrent state of :class:`LRUAMemory` after step ``t``.

    Attributes:
        memory: ``(B, N, W)`` the memory matrix ``M_t``.
        usage: ``(B, N)`` the usage weights ``w^u_t`` (eq. 5), non-negative.
        read_weights: ``(B, R, N)`` the read weights ``w^r_t`` (eq. 3) of every head.
        write_weights: ``(B, R, N)`` the write weights ``w^w_t`` (eq. 7) of every head.
    """

    memory: Tensor
    usage: Tensor
    read_weights: Tensor
    write_weights: Tensor


def least_used_order(usage: Tensor) -> Tensor:
    """The slots from least to most used: a stable ascending sort of the usage.

    Args:
        usage: ``(B, N)`` usage weights.

    Returns:
        ``(B, N)`` int64 slot indices; slots of equal usage keep their index order.
    """
    return torch.sort(usage, dim=-1, stable=True).indices


def least_used_weights(usage: Tensor, n: int) -> Tensor:
    """The least-used weights of eq. (6): 1 on the ``n`` least used slots, else 0.

    ``w^lu(i) = 1`` iff ``w^u(i) <= m(w^u, n)``, the ``n``-th smallest usage, with ties
    at ``m(w^u, n)`` broken by slot index so that exactly ``n`` slots are marked.

    Args:
        usage: ``(B, N)`` usage weights ``w^u``.
        n: how many slots to mark, ``1 <= n <= N``.

    Returns:
        ``(B, N)`` zeros and ones, ``n`` ones per row, in the dtype of ``usage``.
    """
    chosen = least_used_order(usage)[:, :n]  # (B, n)
    return torch.zeros_like(usage).scatter(-1, chosen, 1.0)


def usage_update(
    usage: Tensor, read_weights: Tensor, write_weights: Tensor, gamma: float
) -> Tensor:
    """The usage of eq. (5), summed over heads: ``gamma w^u + sum_h w^r_h + sum_h w^w_h``.

    Args:
        usage: ``(B, N)`` the previous usage ``w^u_{t-1}``.
        read_weights: ``(B, R, N)`` this step's read weights ``w^r_t``.
        write_weights: ``(B, R, N)`` this step's write weights ``w^w_t``.
        gamma: the decay ``gamma`` in ``[0, 1]``.

    Returns:
        ``(B, N)`` the usage ``w^u_t``.
    """
    return gamma * usage + read_weights.sum(dim=1) + write_weights.sum(dim=1)


def write_weightings(prev_read_weights: Tensor, least_used: Tensor, gate: Tensor) -> Tensor:
    """The write weights of eq. (7): ``sigma(alpha) w^r_{t-1} + (1 - sigma(alpha)) w^lu_{t-1}``.

    Args:
        prev_read_weights: ``(B, R, N)`` the previous read weights ``w^r_{t-1}``.
        least_used: ``(B, N)`` the least-used weights ``w^lu_{t-1}``.
        gate: ``(B, R, 1)`` ``sigma(alpha)`` per head, in ``(0, 1)``.

    Returns:
        ``(B, R, N)`` write weights, non-negative.
    """
    return gate * prev_read_weights + (1 - gate) * least_used.unsqueeze(1)


class LRUAMemory(Memory):
    """The LRUA memory of Santoro et al. (2016), sections 3.1-3.2, eqs. 2-8.

    Interface layout, per step and per batch element (``interface_size`` values)::

        [ head_0 | head_1 | ... | head_{R-1} | alpha_0 | ... | alpha_{R-1} ]

        head_h   P = addressing.params_size values in the order of
                 ``addressing.params``; for ``content``: the key k_h (W values,
                 used unchanged both to read, eq. 2, and as the written vector,
                 eq. 8) and the key strength (1, softplus)
        alpha_h  the write gate parameter of head h (1 value; sigma(alpha) in eq. 7)

    so ``interface_size = R P + R``. The addressing scheme must have a parameter
    named ``key`` of width ``W``. A step returns the ``R`` read vectors concatenated,
    ``read_size = R W``.

    Args:
        config: an :class:`LRUAMemory.Config`.
        addressing: a factory ``factory(width, heads)`` for the read lookup; ``None``
            builds :class:`~nma_plugins.addressing.content.ContentAddressing` with its
            default options (for use as a plain layer).

    Raises:
        ValueError: when ``read_heads > slots`` (eq. 6 needs ``n <= N``) or the
            addressing scheme has no ``key`` of width ``W``.
    """

    class Config(Options):
        """Options of the LRUA memory."""

        slots: int = Field(128, ge=1, description="N: the number of memory slots (rows).")
        width: int = Field(40, ge=1, description="W: the width of one slot (and of a key).")
        read_heads: int = Field(
            4,
            ge=1,
            description=(
                "R: read heads, each with its own key and write gate; also n, the number "
                "of least-used slots of eq. 6. At most slots."
            ),
        )
        gamma: float = Field(
            0.95, ge=0.0, le=1.0, description="The usage decay gamma of eq. 5, in [0, 1]."
        )
        erase: Literal["all", "one"] = Field(
            "all",
            description=(
                "Slots zeroed before each write: 'all' = every slot with "
                "w^lu_{t-1}(i) = 1 (the n least used); 'one' = the least used slot only."
            ),
        )

    default_addressing = "content"
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if config.read_heads > config.slots:
            raise ValueError(
                f"LRUAMemory needs read_heads <= slots: eq. 6 marks n = read_heads "
                f"least-used slots (got read_heads={config.read_heads}, slots={config.slots})."
            )
        self.slots = config.slots
        self.width = config.width
        self.read_heads = config.read_heads
        if addressing is None:
            self.addressing: Addressing = ContentAddressing(
                ContentAddressing.Config(), config.width, config.read_heads
            )
        else:
            self.addressing = addressing(config.width, config.read_heads)
        if self.addressing.params.get("key") != config.width:
            raise ValueError(
                "LRUAMemory needs an addressing scheme with a 'key' parameter of width "
                f"{config.width} (the key is also the written vector, eq. 8); "
                f"{type(self.addressing).__name__} has {self.addressing.params}."
            )
        self.head_size = self.addressing.params_size
        self.interface_size = self.read_heads * (self.head_size + 1)
        self.read_size = self.read_heads * self.width

    def initial_state(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> LRUAState:
        """The state before the first step: everything zero.

        An empty memory ``M_0 = 0`` (the paper wipes the memory between episodes), no
        usage (so the first write goes to slots ``0 .. n-1``, by the tie rule of
        eq. 6), and no previous read or write weights.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            An :class:`LRUAState` of zeros: ``memory`` ``(B, N, W)``, ``usage``
            ``(B, N)``, ``read_weights`` and ``write_weights`` ``(B, R, N)``.
        """
        n, w, r = self.slots, self.width, self.read_heads
        weights = torch.zeros(batch_size, r, n, device=device, dtype=dtype)
        return LRUAState(
            memory=torch.zeros(batch_size, n, w, device=device, dtype=dtype),
            usage=torch.zeros(batch_size, n, device=device, dtype=dtype),
            read_weights=weights,
            write_weights=weights.clone(),
        )

    def forward(self, interface: Tensor, state: LRUAState) -> tuple[Tensor, LRUAState]:
        """Erase, write (eqs. 6-8), read (eqs. 2-4), update the usage (eq. 5).

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`LRUAState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)`` are the heads' read vectors
            concatenated; ``state`` is the new :class:`LRUAState`.
        """
        batch = interface.shape[0]
        heads_end = self.read_heads * self.head_size
        raw_heads = interface[:, :heads_end].reshape(batch, self.read_heads, self.head_size)
        params = self.addressing.split(raw_heads)  # {name: (B, R, size)}
        keys = params["key"]  # (B, R, W)
        gate = torch.sigmoid(interface[:, heads_end:]).unsqueeze(-1)  # (B, R, 1)

        # Eq. 6 on the previous usage: w^lu_{t-1}, n = R slots, ties by index.
        order = least_used_order(state.usage)  # (B, N)
        least_used = torch.zeros_like(state.usage).scatter(-1, order[:, : self.read_heads], 1.0)
        if self.config.erase == "all":
            erased = least_used  # (B, N)
        else:
            erased = torch.zeros_like(state.usage).scatter(-1, order[:, :1], 1.0)

        # Eq. 7, then erasure and eq. 8 (every head adds its key).
        write_weights = write_weightings(state.read_weights, least_used, gate)  # (B, R, N)
        memory = state.memory * (1 - erased).unsqueeze(-1)
        memory = memory + torch.matmul(write_weights.transpose(-1, -2), keys)  # (B, N, W)

        # Eqs. 2-4 on the written memory M_t.
        read_weights = self.addressing(params, memory, state.read_weights)  # (B, R, N)
        reads = torch.matmul(read_weights, memory)  # (B, R, W)

        usage = usage_update(state.usage, read_weights, write_weights, self.config.gamma)
        new_state = LRUAState(memory, usage, read_weights, write_weights)
        return reads.reshape(batch, self.read_size), new_state

    def slot_usage(self, state: LRUAState) -> Tensor:
        """``min(w^u_t(i), 1)``, ``(B, N)`` in ``[0, 1]``.

        The usage of eq. (5) is unbounded above (up to ``2R / (1 - gamma)``); a slot
        whose usage reached 1 (one full read or write, not yet decayed) counts as
        fully in use. Below 1 the value is the usage itself, so a threshold on it
        frees the slots least recently and least heavily used.
        """
        return state.usage.clamp(max=1.0)

    def reorder_slots(self, state: LRUAState, order: Tensor) -> LRUAState:
        """Permute the slots: slot ``order[b, i]`` becomes slot ``i``.

        The memory rows, the usage and both weightings move alike. What the next
        step reads does not change for a content addressing scheme (eqs. 2-3 do not
        depend on slot order) as long as no two slots tie at the ``n``-th smallest
        usage: ties in eq. 6 are broken by slot index, which a reorder changes.

        Args:
            state: an :class:`LRUAState`.
            order: ``(B, N)`` int64, a permutation of ``0 .. N-1`` per batch element.

        Returns:
            The permuted :class:`LRUAState`.
        """
        rows = order.unsqueeze(-1).expand_as(state.memory)
        heads = order.unsqueeze(1).expand_as(state.read_weights)
        return LRUAState(
            memory=state.memory.gather(1, rows),
            usage=state.usage.gather(1, order),
            read_weights=state.read_weights.gather(2, heads),
            write_weights=state.write_weights.gather(2, heads),
        )

    def clear_slots(self, state: LRUAState, mask: Tensor) -> LRUAState:
        """Free the slots where ``mask`` ``(B, N)`` is true.

        Their rows, usage and read and write weights become zero: with the lowest
        usage, they are the first least-used slots (eq. 6) of the next step, and so
        the first to be written.

        Args:
            state: an :class:`LRUAState`.
            mask: ``(B, N)`` bool, true for the slots to free.

        Returns:
            The new :class:`LRUAState`.
        """
        keep = (~mask).to(state.usage.dtype)  # (B, N)
        return LRUAState(
            memory=state.memory * keep.unsqueeze(-1),
            usage=state.usage * keep,
            read_weights=state.read_weights * keep.unsqueeze(1),
            write_weights=state.write_weights * keep.unsqueeze(1),
        )

    def inspect(self, state: LRUAState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            ``{"read_weights": (B, R, N) w^r_t, "write_weights": (B, R, N) w^w_t,
            "usage": (B, N) w^u_t, "least_used": (B, N) w^lu_t (eq. 6: the slots the
            next step erases and writes), "memory": (B, N, W) M_t}``.
        """
        return {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "usage": state.usage,
            "least_used": least_used_weights(state.usage, self.read_heads),
            "memory": state.memory,
        }
