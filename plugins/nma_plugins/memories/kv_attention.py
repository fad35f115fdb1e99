"""Masked multi-head scaled dot-product attention over memory slots, with hops.

Vaswani et al. (2017), "Attention Is All You Need", NeurIPS, section 3.2.1, eq. (1),
and section 3.2.2 (multi-head attention); Sukhbaatar, Szlam, Weston & Fergus (2015),
"End-To-End Memory Networks", NeurIPS, section 2.2 (multiple layers, "hops").

Every head ``h`` has a query ``q_h``; the memory holds ``N`` keys ``K(i)`` and values
``V(i)`` and a presence ``m(i)`` in ``[0, 1]`` per slot (0 for an unwritten slot):

    a_h(i) = m(i) exp(q_h . K(i) / sqrt(d_k)) / sum_j m(j) exp(q_h . K(j) / sqrt(d_k))
    o_h    = sum_i a_h(i) V(i)

With every ``m(i)`` in ``{0, 1}`` this is eq. (1), ``softmax(q K^T / sqrt(d_k)) V``,
restricted to the slots with ``m(i) = 1``; a fractional presence enters as the
log-prior ``log m(i)`` added to the score. Slots with ``m(i) <= eps`` take no part;
a head that sees no such slot reads zeros (its weights are all zero).

Hops (Sukhbaatar et al. 2015, section 2.2): the query of hop ``k + 1`` is the query
of hop ``k`` plus that hop's output, ``u^{k+1} = u^k + o^k``, with ``u^1 = q``; keys
and values are the same at every hop (their "layer-wise" tying with ``H = I``).

Adjacent weight tying (Sukhbaatar et al. 2015, section 2.2, "Adjacent"): every slot
holds ``K + 1`` embeddings ``E^0(i), ..., E^K(i)`` of its input; hop ``k`` scores with
``A^k = E^{k-1}`` and reads ``C^k = E^k``, so the output embedding of a hop is the input
embedding of the next (:func:`adjacent_hop_attention`).

Gated hops (Liu & Perez 2017, "Gated End-to-End Memory Networks", EACL, section 3):
instead of ``u^{k+1} = u^k + o^k``, a gate ``T^k = sigmoid(W_T^k u^k + b_T^k)``, one
``(W_T^k, b_T^k)`` per hop, mixes the hop's output into the query,
``u^{k+1} = o^k * T^k + u^k * (1 - T^k)`` (elementwise), so a hop may replace what the
query asked for by what it found (:func:`gated_update`).

Linear start (Sukhbaatar et al. 2015, section 4.2, "LS"): the softmax of every hop is
removed, ``a_h(i) = m(i) q_h . K(i) / sqrt(d_k)`` on the present slots (0 elsewhere),
which makes the read linear in the memory; training puts the softmax back later.

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for slots, ``D`` for the key
size ``d_k`` and ``W`` for the value width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def masked_attention(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    presence: Tensor,
    eps: float,
    linear: bool = False,
    scaled: bool = True,
) -> tuple[Tensor, Tensor]:
    """Scaled dot-product attention of every head over the present slots (eq. 1).

    Numerics, free of host synchronisation: the scores of absent slots are set to
    ``-inf``; the row maximum over present slots is subtracted before ``exp`` (it
    cancels in the quotient, so it is detached; rows with no present slot subtract
    0 instead of ``-inf``); the normaliser is replaced by 1 where it is 0, so such
    rows get zero weights instead of ``0 / 0``. ``log m(i)`` is taken only where
    ``m(i) > eps``, so its gradient ``1 / m(i)`` stays below ``1 / eps``.

    Args:
        queries: ``(B, H, D)`` one query per head.
        keys: ``(B, N, D)`` the slots' keys.
        values: ``(B, N, W)`` the slots' values.
        presence: ``(B, N)`` how much of each slot is written, in ``[0, 1]``, or
            ``(B, H, N)``, a presence per head (each head sees its own slots).
        eps: slots with ``presence <= eps`` are left out.
        linear: without the softmax (linear start): the weights are the scores times
            the presence, ``m(i) q . K(i) / sqrt(d_k)``, on the present slots.
        scaled: divide the scores by ``sqrt(d_k)`` (eq. 1); ``False``: plain dot
            products ``q . K(i)``, as End-To-End Memory Networks score (eq. 1 there).

    Returns:
        ``(outputs, weights)``: ``(B, H, W)`` the heads' outputs and ``(B, H, N)``
        their attention weights, non-negative, each row summing to 1 (or all zero
        when no slot is present); with ``linear``, the unnormalised linear weights.
    """
    scores = torch.matmul(queries, keys.transpose(-1, -2))
    if scaled:
        scores = scores / math.sqrt(queries.shape[-1])
    if presence.dim() == 2:
        presence = presence.unsqueeze(1)  # (B, 1, N), the same for every head
    present = presence > eps  # (B, 1 or H, N)
    if linear:
        weights = scores * torch.where(present, presence, torch.zeros_like(presence))
        return torch.matmul(weights, values), weights
    log_prior = torch.log(torch.where(present, presence, torch.ones_like(presence)))
    logits = torch.where(
        present, scores + log_prior, torch.full_like(scores, -math.inf)
    )  # (B, H, N)
    shift = logits.amax(dim=-1, keepdim=True).detach()
    shift = torch.where(torch.isfinite(shift), shift, torch.zeros_like(shift))
    exps = torch.exp(logits - shift)  # exactly 0 on absent slots
    total = exps.sum(dim=-1, keepdim=True)
    weights = exps / torch.where(total > 0, total, torch.ones_like(total))
    return torch.matmul(weights, values), weights


HopGates = tuple[Tensor, Tensor]
"""``(weight, bias)`` of gated hops: ``(K, D, D)`` and ``(K, D)``, hop ``k``'s
``W_T^k`` and ``b_T^k`` at index ``k - 1``."""


def gated_update(query: Tensor, output: Tensor, gates: HopGates, hop: int) -> Tensor:
    """``u^{k+1} = o^k * T^k + u^k * (1 - T^k)``, ``T^k = sigmoid(W_T^k u^k + b_T^k)``
    (Liu & Perez 2017, section 3) for hop ``k = hop`` (from 1); ``query`` and ``output``
    are ``(B, H, D)``."""
    weight, bias = gates
    gate = torch.sigmoid(torch.matmul(query, weight[hop - 1].T) + bias[hop - 1])
    return output * gate + query * (1 - gate)


def multi_hop_attention(
    queries: Tensor,
    keys: Tensor,
    values: Tensor,
    presence: Tensor,
    hops: int,
    eps: float,
    linear: bool = False,
    scaled: bool = True,
    gates: HopGates | None = None,
) -> tuple[Tensor, Tensor]:
    """``hops`` rounds of :func:`masked_attention` with ``u^{k+1} = u^k + o^k``.

    Args:
        queries: ``(B, H, D)`` the first hop's queries ``u^1``.
        keys: ``(B, N, D)`` the slots' keys.
        values: ``(B, N, W)`` the slots' values; ``W = D`` when ``hops > 1``.
        presence: ``(B, N)`` or ``(B, H, N)`` in ``[0, 1]``.
        hops: the number of hops ``K >= 1``.
        eps: see :func:`masked_attention`.
        linear: see :func:`masked_attention` (linear start).
        scaled: see :func:`masked_attention`.
        gates: with gated hops (:func:`gated_update`), their ``(W_T, b_T)``.

    Returns:
        ``(reads, weights)``: ``(B, H, W)`` the sum of the hops' outputs
        ``o^1 + ... + o^K = u^{K+1} - u^1`` (``o^1`` for one hop; with ``gates``,
        ``u^{K+1} - u^1`` of the gated updates), and ``(B, H, N)`` the attention
        weights of the last hop.
    """
    if gates is not None:
        return _gated_hops(queries, [(keys, values)] * hops, presence, eps, linear, scaled, gates)
    query = queries
    output, weights = masked_attention(query, keys, values, presence, eps, linear, scaled)
    reads = output
    for _ in range(1, hops):  # hops are sequential by definition
        query = query + output
        output, weights = masked_attention(query, keys, values, presence, eps, linear, scaled)
        reads = reads + output
    return reads, weights


def adjacent_hop_attention(
    queries: Tensor,
    embeddings: Tensor,
    presence: Tensor,
    hops: int,
    eps: float,
    linear: bool = False,
    scaled: bool = True,
    gates: HopGates | None = None,
) -> tuple[Tensor, Tensor]:
    """``hops`` rounds of :func:`masked_attention` with adjacent weight tying.

    Hop ``k`` (from 1) attends with ``u^k`` over the keys ``E^{k-1}`` and reads the
    values ``E^k``; ``u^{k+1} = u^k + o^k`` (Sukhbaatar et al. 2015, section 2.2,
    eq. 2 and "Adjacent": ``A^{k+1} = C^k``).

    Args:
        queries: ``(B, H, D)`` the first hop's queries ``u^1``.
        embeddings: ``(B, N, K + 1, D)`` every slot's ``E^0 .. E^K``.
        presence: ``(B, N)`` or ``(B, H, N)`` in ``[0, 1]``.
        hops: ``K >= 1``.
        eps: see :func:`masked_attention`.
        linear: see :func:`masked_attention` (linear start).
        scaled: see :func:`masked_attention`.
        gates: with gated hops (:func:`gated_update`), their ``(W_T, b_T)``.

    Returns:
        ``(reads, weights)``: ``(B, H, D)`` ``o^1 + ... + o^K`` (with ``gates``,
        ``u^{K+1} - u^1`` of the gated updates) and ``(B, H, N)`` the attention weights
        of the last hop.
    """
    if gates is not None:
        pairs = [(embeddings[:, :, k - 1], embeddings[:, :, k]) for k in range(1, hops + 1)]
        return _gated_hops(queries, pairs, presence, eps, linear, scaled, gates)
    query = queries
    reads = torch.zeros_like(queries)
    weights = queries.new_zeros(queries.shape[0], queries.shape[1], embeddings.shape[1])
    for k in range(1, hops + 1):  # hops are sequential by definition
        keys, values = embeddings[:, :, k - 1], embeddings[:, :, k]
        output, weights = masked_attention(query, keys, values, presence, eps, linear, scaled)
        reads = reads + output
        query = query + output
    return reads, weights


def _gated_hops(
    queries: Tensor,
    pairs: list[tuple[Tensor, Tensor]],
    presence: Tensor,
    eps: float,
    linear: bool,
    scaled: bool,
    gates: HopGates,
) -> tuple[Tensor, Tensor]:
    """Hops over the ``(keys, values)`` of ``pairs`` (one pair a hop) with
    :func:`gated_update`: ``u^{K+1} - u^1`` and the last hop's weights."""
    query = queries
    weights = queries.new_zeros(queries.shape[0], queries.shape[1], pairs[0][0].shape[1])
    for k, (keys, values) in enumerate(pairs, start=1):  # hops are sequential by definition
        output, weights = masked_attention(query, keys, values, presence, eps, linear, scaled)
        query = gated_update(query, output, gates, k)
    return query - queries, weights
