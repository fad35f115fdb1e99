"""Content-based addressing: attend to the slots whose contents resemble a key.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401,
section 3.3.1, equations (5) and (6). Each head emits a key vector ``k`` and a key
strength ``beta``; its weighting is a softmax over slots of ``beta`` times the
cosine similarity between ``k`` and every memory row:

    K(u, v)  = u . v / (|u| |v| + eps)                                  (eq. 6)
    w_c(i)   = exp(beta K(k, M(i))) / sum_j exp(beta K(k, M(j)))        (eq. 5)

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for memory slots and ``W``
for the slot width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from nma import Addressing, Options


def cosine_similarity(keys: Tensor, memory: Tensor, eps: float) -> Tensor:
    """Cosine similarity of every key with every memory row, NTM eq. (6).

    ``K(k, M(i)) = k . M(i) / (|k| |M(i)| + eps)``; ``eps`` keeps the quotient finite
    when a key or a row is zero (the gradient of the norms at zero is taken as 0).

    Args:
        keys: ``(B, H, W)`` one key per head.
        memory: ``(B, N, W)`` the memory matrix.
        eps: a small positive constant added to the product of the norms.

    Returns:
        ``(B, H, N)`` similarities in ``[-1, 1]``.
    """
    dots = torch.matmul(keys, memory.transpose(-1, -2))  # (B, H, N)
    key_norms = torch.linalg.vector_norm(keys, dim=-1).unsqueeze(-1)  # (B, H, 1)
    row_norms = torch.linalg.vector_norm(memory, dim=-1).unsqueeze(-2)  # (B, 1, N)
    return dots / (key_norms * row_norms + eps)


def content_weights(keys: Tensor, strengths: Tensor, memory: Tensor, eps: float) -> Tensor:
    """Content weighting, NTM eq. (5): ``softmax_i(beta K(k, M(i)))``.

    Args:
        keys: ``(B, H, W)`` one key per head.
        strengths: ``(B, H, 1)`` key strengths ``beta >= 0``.
        memory: ``(B, N, W)`` the memory matrix.
        eps: see :func:`cosine_similarity`.

    Returns:
        ``(B, H, N)`` weightings; each row is positive and sums to 1.
    """
    return torch.softmax(strengths * cosine_similarity(keys, memory, eps), dim=-1)


class ContentAddressing(Addressing):
    """Content addressing of the Neural Turing Machine (Graves et al. 2014, eqs. 5-6).

    Per head it consumes a key (``W`` values) and a strength (1 value) from the
    interface: ``params = {"key": W, "strength": 1}``. :meth:`constrain` passes the
    key through unchanged and maps the strength through softplus, so ``beta >= 0``.
    The previous weightings are ignored: a purely content-based head has no notion
    of location.

    Args:
        config: a :class:`ContentAddressing.Config`.
        width: the slot width ``W`` (the key size).
        heads: the number of heads ``H`` addressed at once.
    """

    class Config(Options):
        """Options of content addressing."""

        eps: float = Field(
            1e-6,
            gt=0,
            description=(
                "Added to |k||M(i)| in the cosine similarity (NTM eq. 6) so that "
                "zero keys or zero memory rows do not divide by zero."
            ),
        )

    config: Config

    def __init__(self, config: Config, width: int, heads: int) -> None:
        super().__init__(config, width, heads)
        self.params = {"key": width, "strength": 1}

    def constrain(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map raw interface values into range: ``strength = softplus(raw) >= 0``.

        Args:
            raw: ``{"key": (B, H, W), "strength": (B, H, 1)}`` unconstrained.

        Returns:
            The same names and shapes, constrained.
        """
        return {"key": raw["key"], "strength": F.softplus(raw["strength"])}

    def forward(self, params: dict[str, Tensor], memory: Tensor, prev_weights: Tensor) -> Tensor:
        """Content weightings for all heads, NTM eq. (5).

        Args:
            params: ``{"key": (B, H, W), "strength": (B, H, 1)}``, constrained.
            memory: ``(B, N, W)`` the memory matrix.
            prev_weights: ``(B, H, N)`` unused by this scheme.

        Returns:
            ``(B, H, N)`` weightings; each row is positive and sums to 1.
        """
        return content_weights(params["key"], params["strength"], memory, self.config.eps)
