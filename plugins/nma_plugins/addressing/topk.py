"""Sparse top-K content addressing: only the K most similar slots keep any weight.

Rae, Hunt, Harley, Danihelka, Senior, Wayne, Graves & Lillicrap (2016), "Scaling
Memory-Augmented Neural Networks with Sparse Reads and Writes", NIPS 2016,
arXiv:1610.09027, section 3.1 (sparse read). The similarity and the key strength are
those of NTM content addressing (Graves et al. 2014, eqs. 5-6, reused from
:mod:`nma_plugins.addressing.content`):

    K(k, M(i)) = k . M(i) / (|k| |M(i)| + eps)                              (NTM eq. 6)
    S          = the K slots with the largest K(k, M(i))                    (SAM 3.1)
    w(i)       = exp(beta K(k, M(i))) / sum_{j in S} exp(beta K(k, M(j)))  for i in S
    w(i)       = 0                                                          otherwise

so ``w`` is the content weighting of NTM eq. (5) restricted to its K largest entries
and renormalised over them. Since ``beta >= 0`` and the softmax is monotonic, the K
slots of largest similarity are also the K slots of largest content weight (for
``beta = 0`` every slot ties and any K of them may be chosen).

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for memory slots, ``W`` for the
slot width and ``K`` for the number of slots kept.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import Tensor

from nma_plugins.addressing.content import ContentAddressing, cosine_similarity


def sparse_content_weights(keys: Tensor, strengths: Tensor, rows: Tensor, eps: float) -> Tensor:
    """Content weights over a given set of rows per head: ``softmax_j(beta K(k, rows_j))``.

    This is the weighting of SAM's sparse read once the K rows of a head are known
    (however they were found: exact search or an approximate index).

    Args:
        keys: ``(B, H, W)`` one key per head.
        strengths: ``(B, H, 1)`` key strengths ``beta >= 0``.
        rows: ``(B, H, K, W)`` the K selected memory rows of every head.
        eps: see :func:`nma_plugins.addressing.content.cosine_similarity`.

    Returns:
        ``(B, H, K)`` weights; each row is positive and sums to 1.
    """
    batch, heads, k, width = rows.shape
    sims = cosine_similarity(
        keys.reshape(batch * heads, 1, width), rows.reshape(batch * heads, k, width), eps
    ).reshape(batch, heads, k)
    return torch.softmax(strengths * sims, dim=-1)


def topk_content_weights(
    keys: Tensor, strengths: Tensor, memory: Tensor, k: int, eps: float
) -> Tensor:
    """Dense top-K content weighting: NTM eq. (5) kept on the K most similar slots only.

    Args:
        keys: ``(B, H, W)`` one key per head.
        strengths: ``(B, H, 1)`` key strengths ``beta >= 0``.
        memory: ``(B, N, W)`` the memory matrix.
        k: slots kept per head; ``min(k, N)`` are kept.
        eps: see :func:`nma_plugins.addressing.content.cosine_similarity`.

    Returns:
        ``(B, H, N)`` weightings with exactly ``min(k, N)`` positive entries per row,
        summing to 1; zeros elsewhere.
    """
    sims = cosine_similarity(keys, memory, eps)  # (B, H, N)
    top, index = sims.topk(min(k, sims.shape[-1]), dim=-1)  # (B, H, K)
    weights = torch.softmax(strengths * top, dim=-1)
    return torch.zeros_like(sims).scatter(-1, index, weights)


class TopKAddressing(ContentAddressing):
    """Sparse content addressing: softmax over the K most similar slots (SAM, section 3.1).

    Per head it consumes the same parameters as ``content`` (``params = {"key": W,
    "strength": 1}``, strength through softplus); it ignores the previous weightings.
    Every weighting row has exactly ``min(k, N)`` non-zero entries. Gradients flow
    through the K kept similarities only: the choice of the K slots is piecewise
    constant.

    This scheme returns dense ``(B, H, N)`` weightings, as the :class:`nma.Addressing`
    contract requires, so its cost is linear in ``N``; the ``sam`` memory uses the
    same weighting sparsely (:func:`sparse_content_weights`) on the rows its index
    finds.

    Args:
        config: a :class:`TopKAddressing.Config`.
        width: the slot width ``W`` (the key size).
        heads: the number of heads ``H`` addressed at once.
    """

    class Config(ContentAddressing.Config):
        """Options of top-K content addressing."""

        k: int = Field(
            4,
            ge=1,
            description=(
                "K: slots that keep weight per head (the K most similar); the rest get 0. "
                "When K >= the number of slots this is plain content addressing."
            ),
        )

    config: Config

    def forward(self, params: dict[str, Tensor], memory: Tensor, prev_weights: Tensor) -> Tensor:
        """Top-K content weightings for all heads.

        Args:
            params: ``{"key": (B, H, W), "strength": (B, H, 1)}``, constrained.
            memory: ``(B, N, W)`` the memory matrix.
            prev_weights: ``(B, H, N)`` unused by this scheme.

        Returns:
            ``(B, H, N)`` weightings; ``min(K, N)`` positive entries per row, summing to 1.
        """
        return topk_content_weights(
            params["key"], params["strength"], memory, self.config.k, self.config.eps
        )
