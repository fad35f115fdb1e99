"""Attention over the top-k retrieved (key, value) pairs of an external memory.

Wu, Rabe, Hutchins & Szegedy (2022), "Memorizing Transformers", ICLR, §3: each query
retrieves the ``k`` stored keys with the largest dot product and attends to them
with its own softmax::

    S      = top-k_i (q · K(i) / sqrt(d))               over the present entries
    a(i)   = exp(q · K(i) / sqrt(d)) / Σ_{j ∈ S} exp(q · K(j) / sqrt(d))    i ∈ S
    o      = Σ_{i ∈ S} a(i) V(i)

Entries whose presence is at most ``eps`` (never written) are never retrieved; a
query that finds none reads zeros and is reported as such (``found`` false).
Shapes: ``B`` batch, ``H`` heads, ``T`` queries, ``N`` entries, ``d`` head width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def knn_attention(
    queries: Tensor, keys: Tensor, values: Tensor, presence: Tensor, top_k: int, eps: float
) -> tuple[Tensor, Tensor]:
    """Top-k retrieval and attention of every query over the memory's entries.

    Args:
        queries: ``(B, H, T, d)``.
        keys: ``(B, H, N, d)``.
        values: ``(B, H, N, d)``.
        presence: ``(B, N)`` in ``[0, 1]``; entries with ``presence <= eps`` are absent.
        top_k: entries retrieved per query (at most ``N``).
        eps: see ``presence``.

    Returns:
        ``(outputs, found)``: ``(B, H, T, d)`` and ``(B, H, T, 1)``, 1.0 where the
        query retrieved at least one present entry.
    """
    batch, heads, length, width = queries.shape
    scores = torch.matmul(queries, keys.transpose(-1, -2)) / math.sqrt(width)  # (B, H, T, N)
    present = (presence > eps).view(batch, 1, 1, -1)
    scores = scores.masked_fill(~present, -math.inf)
    best, index = scores.topk(min(top_k, scores.shape[-1]), dim=-1)  # (B, H, T, k)
    found = torch.isfinite(best[..., :1])
    shift = torch.where(found, best[..., :1], torch.zeros_like(best[..., :1])).detach()
    exps = torch.exp(best - shift)  # exactly 0 for absent entries
    total = exps.sum(dim=-1, keepdim=True)
    weights = exps / torch.where(total > 0, total, torch.ones_like(total))
    flat = values.reshape(batch * heads, -1, width)
    picked = torch.gather(flat, 1, index.reshape(batch * heads, -1, 1).expand(-1, -1, width))
    picked = picked.view(batch, heads, length, -1, width)  # (B, H, T, k, d)
    outputs = (weights.unsqueeze(-1) * picked).sum(dim=-2)
    return outputs, found.to(queries.dtype)
