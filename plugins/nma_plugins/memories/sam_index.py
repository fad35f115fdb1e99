"""Nearest-neighbour search for SAM's sparse reads: exact, or a random-hyperplane LSH index.

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016, arXiv:1610.09027, section 3.5 (approximate nearest neighbours):
the K rows a read head attends to are the K rows most similar to its key; finding
them exactly costs ``O(N W)`` per query, so SAM keeps an approximate index of the
memory that is updated for the rows each step writes.

:func:`exact_search` is the exact top-K by cosine similarity (NTM eq. 6, reused from
:mod:`nma_plugins.addressing.content`).

:class:`LSHIndex` is locality-sensitive hashing for the cosine similarity with random
hyperplanes (Charikar 2002): with ``b`` random Gaussian directions ``p_1..p_b`` per
table, a vector ``v`` falls in the bucket whose bit ``j`` is ``[p_j . v > 0]``; two
vectors at angle ``theta`` agree on a bit with probability ``1 - theta / pi``, so
similar rows tend to share buckets. The index keeps ``L`` independent tables of
``2^b`` buckets, each bucket a ring of ``c`` slot numbers (``-1``: empty):

* insert (the ``E`` rows written in a step): hash each row in every table and put
  its slot number at the bucket's next ring position (``O(E L b W)``). The entry it
  had in its old bucket is left there (lazily): it only adds a candidate, whose
  similarity is recomputed from the current row anyway. When a bucket overflows,
  its oldest entry is overwritten.
* query: hash the key, and also probe the ``P`` buckets obtained by flipping the
  ``P`` bits whose projections are closest to 0 (multi-probe LSH, Lv et al. 2007);
  the candidates are the ``L (1 + P) c`` slot numbers found, plus fallback slots
  given by the caller (SAM passes the head's previous K read slots, so every query
  has at least K distinct candidates). Duplicates and empty entries are masked, the
  candidates' exact similarities computed, and the K best kept:
  ``O(L (1 + P) c (W + log))``, independent of ``N``.

The tables ``(B, L, 2^b c + 1)`` (int32; the last entry of a table is a scratch
position for entries that are dropped) and the ring counters ``(B, L, 2^b)`` are
part of the memory's recurrent state and are updated in place.

Recall is not guaranteed: a true neighbour is missed when it shares no probed bucket
with the key in any table, or when it was pushed out of a full bucket. See
``docs/memories.md, section sam`` for measured recall.

Shapes use ``B`` for the batch, ``H`` for queries (heads), ``N`` for slots, ``W`` for
the slot width, ``L`` for tables, ``b`` for bits, ``c`` for the bucket size and ``K``
for the neighbours returned.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nma_plugins.addressing.content import cosine_similarity


def exact_search(memory: Tensor, queries: Tensor, k: int, eps: float) -> Tensor:
    """The ``k`` slots most similar to every query, by exact cosine similarity.

    Args:
        memory: ``(B, N, W)`` the memory rows.
        queries: ``(B, H, W)`` one key per head.
        k: neighbours per query, ``k <= N``.
        eps: see :func:`nma_plugins.addressing.content.cosine_similarity`.

    Returns:
        ``(B, H, k)`` int64 slot indices, most similar first.
    """
    with torch.no_grad():
        return cosine_similarity(queries, memory, eps).topk(k, dim=-1).indices


def candidate_search(
    memory: Tensor, queries: Tensor, candidates: Tensor, k: int, eps: float
) -> Tensor:
    """The ``k`` best of a set of candidate slots per query, by exact cosine similarity.

    Args:
        memory: ``(B, N, W)`` the memory rows.
        queries: ``(B, H, W)`` one key per head.
        candidates: ``(B, H, C)`` int64 candidate slots; ``-1`` marks none, repeats
            are allowed. Each row must hold at least ``k`` distinct slots.
        k: neighbours per query.
        eps: see :func:`nma_plugins.addressing.content.cosine_similarity`.

    Returns:
        ``(B, H, k)`` int64 distinct slot indices, most similar first.
    """
    with torch.no_grad():
        batch, heads, count = candidates.shape
        width = memory.shape[2]
        ordered = candidates.sort(dim=-1).values  # -1 first, repeats adjacent
        invalid = ordered < 0
        invalid[..., 1:] |= ordered[..., 1:] == ordered[..., :-1]
        index = ordered.clamp(min=0).reshape(batch, heads * count, 1).expand(-1, -1, width)
        rows = memory.gather(1, index).reshape(batch * heads, count, width)
        sims = cosine_similarity(queries.reshape(batch * heads, 1, width), rows, eps)
        sims = sims.reshape(batch, heads, count).masked_fill(invalid, float("-inf"))
        best = sims.topk(k, dim=-1).indices
        return ordered.gather(-1, best)


class LSHIndex(nn.Module):
    """Random-hyperplane LSH tables over the memory rows (see the module docstring).

    The hyperplanes are drawn from a generator of their own, seeded with ``seed``, so
    the same options give the same index in every run and process: tables saved with
    a memory's state (``nma.save_memory``) stay valid when loaded by another run. They
    are a buffer that is not saved with the model (it follows from the options).

    Args:
        width: ``W``, the row width.
        tables: ``L``, independent hash tables.
        bits: ``b``, hyperplanes (bits) per table; ``2^b`` buckets per table.
        bucket_size: ``c``, slot numbers a bucket holds before overwriting its oldest.
        probes: ``P``, extra buckets probed per table at query time, ``P <= b``.
        seed: seeds the hyperplanes.
    """

    planes: Tensor

    def __init__(
        self, width: int, tables: int, bits: int, bucket_size: int, probes: int, seed: int = 0
    ) -> None:
        super().__init__()
        if not 1 <= bits <= 30:
            raise ValueError(f"LSH bits must be in 1..30, got {bits}.")
        if not 0 <= probes <= bits:
            raise ValueError(f"LSH probes must be in 0..bits ({bits}), got {probes}.")
        self.width = width
        self.tables = tables
        self.bits = bits
        self.bucket_size = bucket_size
        self.probes = probes
        self.buckets = 2**bits
        generator = torch.Generator().manual_seed(seed)
        planes = torch.randn(tables, width, bits, generator=generator)
        self.register_buffer("planes", planes, persistent=False)
        self.register_buffer("powers", 2 ** torch.arange(bits), persistent=False)

    def empty(self, batch: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """Empty tables: ``(B, L, 2^b c + 1)`` int32 of ``-1`` and ``(B, L, 2^b)`` int64 zeros."""
        size = self.buckets * self.bucket_size + 1
        table = torch.full((batch, self.tables, size), -1, dtype=torch.int32, device=device)
        fill = torch.zeros(batch, self.tables, self.buckets, dtype=torch.int64, device=device)
        return table, fill

    def _project(self, vectors: Tensor) -> Tensor:
        """``(B, M, W)`` -> ``(B, M, L, b)`` projections on the hyperplanes."""
        return torch.einsum("bmw,lwk->bmlk", vectors, self.planes.to(vectors.dtype))

    def _code(self, projections: Tensor) -> Tensor:
        """``(..., b)`` projections -> ``(...)`` int64 bucket numbers."""
        return ((projections > 0).to(torch.int64) * self.powers).sum(-1)

    def codes(self, vectors: Tensor) -> Tensor:
        """The bucket of every vector in every table.

        Args:
            vectors: ``(B, M, W)``.

        Returns:
            ``(B, M, L)`` int64 bucket numbers in ``0..2^b - 1``.
        """
        return self._code(self._project(vectors))

    def insert(self, table: Tensor, fill: Tensor, slots: Tensor, vectors: Tensor) -> None:
        """Put ``slots`` into the buckets of ``vectors``, in every table, in place.

        Within one call, the entries of a bucket are taken in order; if more than
        ``c`` land in one bucket only the last ``c`` are kept.

        Args:
            table: ``(B, L, 2^b c + 1)`` int32 slot numbers, updated in place.
            fill: ``(B, L, 2^b)`` int64 entries ever put in each bucket, in place.
            slots: ``(B, M)`` int64 slot numbers.
            vectors: ``(B, M, W)`` their rows.
        """
        with torch.no_grad():
            batch, count = slots.shape
            code = self.codes(vectors).transpose(1, 2).contiguous()  # (B, L, M)
            code, order = code.sort(dim=-1, stable=True)
            entries = slots.unsqueeze(1).expand(-1, self.tables, -1).gather(2, order)
            first = torch.searchsorted(code, code, side="left")
            after = torch.searchsorted(code, code, side="right")
            rank = torch.arange(count, device=slots.device) - first  # order within bucket
            kept = rank >= (after - first) - self.bucket_size
            ring = (fill.gather(2, code) + rank) % self.bucket_size
            position = code * self.bucket_size + ring
            scratch = self.buckets * self.bucket_size
            position = torch.where(kept, position, torch.full_like(position, scratch))
            table.scatter_(2, position, entries.to(table.dtype))
            fill.scatter_add_(2, code, torch.ones_like(code))

    def candidates(self, table: Tensor, queries: Tensor) -> Tensor:
        """The slot numbers in the buckets probed for every query.

        Args:
            table: ``(B, L, 2^b c + 1)`` int32 slot numbers.
            queries: ``(B, H, W)`` one key per head.

        Returns:
            ``(B, H, L (1 + P) c)`` int64 slot numbers, ``-1`` where a bucket entry is
            empty; repeats are possible.
        """
        with torch.no_grad():
            batch, heads, _ = queries.shape
            projections = self._project(queries)  # (B, H, L, b)
            code = self._code(projections).unsqueeze(-1)  # (B, H, L, 1)
            if self.probes > 0:
                weakest = projections.abs().topk(self.probes, dim=-1, largest=False).indices
                code = torch.cat([code, code ^ self.powers[weakest]], dim=-1)  # (B, H, L, 1+P)
            offsets = torch.arange(self.bucket_size, device=queries.device)
            position = code.unsqueeze(-1) * self.bucket_size + offsets  # (B, H, L, 1+P, c)
            per_table = position.shape[3] * self.bucket_size
            position = position.permute(0, 2, 1, 3, 4).reshape(batch, self.tables, -1)
            found = table.gather(2, position).view(batch, self.tables, heads, per_table)
            return found.permute(0, 2, 1, 3).reshape(batch, heads, -1).to(torch.int64)

    def search(
        self, table: Tensor, memory: Tensor, queries: Tensor, fallback: Tensor, k: int, eps: float
    ) -> Tensor:
        """Approximate top-``k`` by cosine similarity among the probed buckets and ``fallback``.

        Args:
            table: ``(B, L, 2^b c + 1)`` int32 slot numbers.
            memory: ``(B, N, W)`` the memory rows (similarities are exact).
            queries: ``(B, H, W)`` one key per head.
            fallback: ``(B, H, F)`` int64 slots always considered, ``F >= k`` distinct.
            k: neighbours per query.
            eps: see :func:`nma_plugins.addressing.content.cosine_similarity`.

        Returns:
            ``(B, H, k)`` int64 distinct slot indices, most similar first.
        """
        found = torch.cat([self.candidates(table, queries), fallback], dim=-1)
        return candidate_search(memory, queries, found, k, eps)
