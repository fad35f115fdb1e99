"""Associative memory: modern Hopfield retrieval or classical outer-product storage.

Two modes, chosen with the option ``mode``.

**hopfield** — the continuous modern Hopfield network of Ramsauer et al. (2020),
"Hopfield Networks is All You Need", arXiv:2008.02217, section 2. The stored patterns
are the rows of ``X`` (``N`` slots of width ``W``); a state pattern (query) ``xi`` is
updated by

    xi^new = X^T softmax(beta X xi)                                      (eq. 3)

(the paper writes ``X`` with the patterns as columns, ``xi^new = X softmax(beta X^T
xi)``; here the patterns are rows, as in every memory of this package). The update is
applied ``iterations`` times, starting from the query of a read head; the read is
the final state. Patterns are written verbatim into a ring of slots: at step ``t``
the value ``x_t = tanh(v_t)`` replaces slot ``(t - 1) mod N``, and a ``written``
mask keeps the slots not yet written out of the softmax (their scores are set to
the most negative finite number of the dtype, so they get weight 0 once any slot is
written, and an all-empty memory reads zeros rather than NaN).

**outer-product** — a linear (correlation-matrix) associative memory, Kohonen (1972),
"Correlation Matrix Memories", IEEE Trans. Computers C-21(4), with the exponential
forgetting of the fast-weights literature, Ba et al. (2016), "Using Fast Weights to
Attend to the Recent Past", arXiv:1610.06258, section 2 (``A(t) = lambda A(t-1) +
eta h(t) h(t)^T``, here hetero-associative with ``eta = 1``). With key ``k_t``
(``N`` values), value ``v_t`` (``W`` values) and query ``q`` (``N`` values):

    M_t = lambda M_{t-1} + v_t k_t^T                      write    (M is W x N)
    r   = M_t q                                           read

Keys and queries are optionally l2-normalised, ``k <- k / max(|k|, eps)``, so that a
set of orthonormal keys retrieves its values exactly (with ``lambda = 1``) and the
memory stays bounded by ``|v| / (1 - lambda)``. The state holds ``M_t^T`` as a
``(B, N, W)`` matrix: row ``i`` is the value bound to the ``i``-th key coordinate, so
``slots`` is the key size and the read is ``r = sum_i q(i) M_t^T(i)``.

Shapes use ``B`` for the batch, ``N`` for slots, ``W`` for the slot width and ``R``
for read heads.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from nma import AddressingFactory, Memory, Options


class AssociativeState(NamedTuple):
    """The recurrent state of :class:`AssociativeMemory` after a step.

    Attributes:
        memory: ``(B, N, W)`` the stored patterns ``X`` (hopfield) or ``M_t^T``
            (outer-product).
        read_weights: ``(B, R, N)`` hopfield: the softmax of the last update
            iteration of every read head; outer-product: the (normalised) queries.
        write_weights: ``(B, 1, N)`` hopfield: one-hot on the slot just written (the
            ring pointer); outer-product: the (normalised) key just written.
        written: ``(B, N)`` hopfield: 1 for slots written at least once, else 0;
            outer-product: unused, zeros.
    """

    memory: Tensor
    read_weights: Tensor
    write_weights: Tensor
    written: Tensor


def hopfield_retrieve(
    queries: Tensor, beta: Tensor, patterns: Tensor, mask: Tensor, iterations: int
) -> tuple[Tensor, Tensor]:
    """Modern Hopfield retrieval, Ramsauer et al. (2020) eq. (3), iterated.

    ``xi_0 = query``, ``p_k = softmax(beta X xi_{k-1})`` over the slots where ``mask``
    is true, ``xi_k = X^T p_k``, for ``k = 1..iterations``.

    Args:
        queries: ``(B, R, W)`` initial state patterns ``xi_0``.
        beta: ``(B, R, 1)`` inverse temperatures ``beta >= 0``.
        patterns: ``(B, N, W)`` stored patterns ``X`` (one per row).
        mask: ``(B, N)`` boolean, the slots that hold a pattern.
        iterations: the number of updates, at least 1.

    Returns:
        ``(xi, p)``: the retrieved patterns ``(B, R, W)`` and the softmax of the last
        iteration ``(B, R, N)`` (rows non-negative, summing to 1).
    """
    hidden = ~mask.unsqueeze(1)  # (B, 1, N)
    state = queries
    weights = queries.new_zeros(queries.shape[:-1] + patterns.shape[1:2])
    for _ in range(iterations):
        scores = beta * torch.matmul(state, patterns.transpose(-1, -2))  # (B, R, N)
        # the most negative value of the scores' own dtype (bfloat16 under autocast)
        fill = torch.finfo(scores.dtype).min
        weights = torch.softmax(scores.masked_fill(hidden, fill), dim=-1)
        state = torch.matmul(weights, patterns)  # (B, R, W)
    return state, weights


def l2_normalize(x: Tensor, eps: float) -> Tensor:
    """``x / max(|x|, eps)`` along the last axis.

    A unit vector is returned unchanged (so orthonormal keys stay exactly
    orthonormal); ``eps`` keeps a zero vector at zero instead of dividing by zero.

    Args:
        x: ``(..., D)``.
        eps: the smallest norm divided by.

    Returns:
        ``(..., D)``, each vector of norm 1 (or less than 1 when ``|x| < eps``).
    """
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp(min=eps)


class AssociativeMemory(Memory):
    """An associative memory: modern Hopfield retrieval or outer-product storage.

    Every step writes one pattern, then the ``R`` read heads read the memory just
    written. Interface layout, per step and per batch element:

    ``mode = "hopfield"`` (``interface_size = W + R (W + 1)``)::

        [ value W | query_0 W, strength_0 1 | ... | query_{R-1} W, strength_{R-1} 1 ]

        value     the pattern to store, x = tanh(value)
        query_r   the initial state pattern xi_0 of read head r (unconstrained)
        strength  beta = softplus(strength) >= 0, the inverse temperature of eq. (3)

    ``mode = "outer-product"`` (``interface_size = N + W + R N``)::

        [ key N | value W | query_0 N | ... | query_{R-1} N ]

        key, query  l2-normalised when ``normalize_keys`` (unconstrained otherwise)
        value       v = tanh(value)

    A step returns the ``R`` read vectors concatenated, ``read_size = R W``.

    Args:
        config: an :class:`AssociativeMemory.Config`.
        addressing: unused (the memory addresses by its own rule); must be ``None``.
    """

    class Config(Options):
        """Options of the associative memory."""

        mode: Literal["hopfield", "outer-product"] = Field(
            "hopfield",
            description=(
                "'hopfield': modern Hopfield retrieval over a ring of stored patterns "
                "(Ramsauer et al. 2020, eq. 3); 'outer-product': M = decay M + v k^T, "
                "read M q (Kohonen 1972)."
            ),
        )
        slots: int = Field(
            64,
            ge=1,
            description="N: stored patterns (hopfield) or the key size (outer-product).",
        )
        width: int = Field(20, ge=1, description="W: the width of a pattern / value.")
        read_heads: int = Field(1, ge=1, description="R: read heads, each returns W values.")
        iterations: int = Field(
            1,
            ge=1,
            le=16,
            description="Hopfield update steps per read (eq. 3 applied repeatedly).",
        )
        decay: float = Field(
            0.95,
            ge=0,
            le=1,
            description="lambda in M_t = lambda M_{t-1} + v k^T (outer-product only).",
        )
        normalize_keys: bool = Field(
            True,
            description="l2-normalise keys and queries (outer-product only).",
        )
        eps: float = Field(
            1e-6,
            gt=0,
            description="Smallest norm divided by when normalising keys and queries.",
        )

    default_addressing = None
    config: Config

    def __init__(self, config: Config, addressing: AddressingFactory | None = None) -> None:
        super().__init__(config, addressing)
        if addressing is not None:
            raise ValueError("AssociativeMemory takes no addressing scheme.")
        self.slots = config.slots
        self.width = config.width
        self.read_heads = config.read_heads
        self.hopfield = config.mode == "hopfield"
        if self.hopfield:
            self.interface_size = config.width + config.read_heads * (config.width + 1)
        else:
            self.interface_size = config.slots + config.width + config.read_heads * config.slots
        self.read_size = config.read_heads * config.width

    def initial_state(
        self, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> AssociativeState:
        """The state before the first step.

        Args:
            batch_size: ``B``.
            device: where the state lives.
            dtype: its floating-point type.

        Returns:
            An empty memory: ``memory`` ``(B, N, W)`` zeros, ``read_weights``
            ``(B, R, N)`` zeros, ``written`` ``(B, N)`` zeros, and ``write_weights``
            ``(B, 1, N)`` one-hot on the last slot in hopfield mode (the ring pointer
            moves on by one before each write, so the first pattern goes to slot 0),
            zeros in outer-product mode.
        """
        n, w = self.slots, self.width
        write_weights = torch.zeros(batch_size, 1, n, device=device, dtype=dtype)
        if self.hopfield:
            write_weights.narrow(-1, n - 1, 1).fill_(1)
        return AssociativeState(
            memory=torch.zeros(batch_size, n, w, device=device, dtype=dtype),
            read_weights=torch.zeros(batch_size, self.read_heads, n, device=device, dtype=dtype),
            write_weights=write_weights,
            written=torch.zeros(batch_size, n, device=device, dtype=dtype),
        )

    def forward(
        self, interface: Tensor, state: AssociativeState
    ) -> tuple[Tensor, AssociativeState]:
        """Write one pattern, then read with every head.

        Args:
            interface: ``(B, interface_size)`` unconstrained controller outputs, laid
                out as described in the class docstring.
            state: the previous :class:`AssociativeState`.

        Returns:
            ``(reads, state)``: ``reads`` ``(B, R W)`` and the new state.
        """
        if self.hopfield:
            return self._hopfield(interface, state)
        return self._outer_product(interface, state)

    def _hopfield(
        self, interface: Tensor, state: AssociativeState
    ) -> tuple[Tensor, AssociativeState]:
        batch, w = interface.shape[0], self.width
        value = torch.tanh(interface[:, :w])  # (B, W)
        heads = interface[:, w:].reshape(batch, self.read_heads, w + 1)
        queries = heads[..., :w]  # (B, R, W)
        beta = F.softplus(heads[..., w:])  # (B, R, 1)

        # The ring: the pointer moves on by one slot; that slot is overwritten.
        write_weights = state.write_weights.roll(1, dims=-1)  # (B, 1, N)
        slot = write_weights.transpose(1, 2)  # (B, N, 1)
        memory = state.memory * (1 - slot) + slot * value.unsqueeze(1)  # (B, N, W)
        written = torch.maximum(state.written, write_weights.squeeze(1))  # (B, N)

        reads, read_weights = hopfield_retrieve(
            queries, beta, memory, written > 0, self.config.iterations
        )
        new = AssociativeState(memory, read_weights, write_weights, written)
        return reads.reshape(batch, self.read_size), new

    def _outer_product(
        self, interface: Tensor, state: AssociativeState
    ) -> tuple[Tensor, AssociativeState]:
        batch, n, w = interface.shape[0], self.slots, self.width
        key = interface[:, :n]  # (B, N)
        value = torch.tanh(interface[:, n : n + w])  # (B, W)
        queries = interface[:, n + w :].reshape(batch, self.read_heads, n)  # (B, R, N)
        if self.config.normalize_keys:
            key = l2_normalize(key, self.config.eps)
            queries = l2_normalize(queries, self.config.eps)
        # M^T_t = lambda M^T_{t-1} + k v^T, i.e. M_t = lambda M_{t-1} + v k^T.
        memory = self.config.decay * state.memory + key.unsqueeze(-1) * value.unsqueeze(-2)
        reads = torch.matmul(queries, memory)  # (B, R, W): r = M q
        new = AssociativeState(memory, queries, key.unsqueeze(1), state.written)
        return reads.reshape(batch, self.read_size), new

    def inspect(self, state: AssociativeState) -> dict[str, Tensor]:
        """What the step that produced ``state`` did.

        Returns:
            ``{"read_weights": (B, R, N), "write_weights": (B, 1, N),
            "memory": (B, N, W)}``, and in hopfield mode also ``"usage": (B, N)``
            (the written mask). In hopfield mode the read weights are the attention
            of the last update iteration; in outer-product mode they are the
            (normalised) queries and the write weights the key, which may be
            negative and need not sum to 1.
        """
        out = {
            "read_weights": state.read_weights,
            "write_weights": state.write_weights,
            "memory": state.memory,
        }
        if self.hopfield:
            out["usage"] = state.written
        return out
