"""The Neural Turing Machine's full addressing: content, interpolation, shift, sharpening.

Graves, Wayne & Danihelka (2014), "Neural Turing Machines", arXiv:1410.5401,
section 3.3 and figure 2. Every head emits a key ``k``, a key strength ``beta``, an
interpolation gate ``g``, a shift weighting ``s`` over the offsets ``-R..R`` and a
sharpening exponent ``gamma``; its weighting is computed in four stages:

    w_c  = softmax_i(beta K(k, M(i)))                     content        (eqs. 5-6)
    w_g  = g w_c + (1 - g) w_{t-1}                        interpolation  (eq. 7)
    w~(i) = sum_j w_g(j) s(i - j),  indices modulo N      circular shift (eq. 8)
    w(i) = w~(i)^gamma / sum_j w~(j)^gamma                sharpening     (eq. 9)

Shapes use ``B`` for the batch, ``H`` for heads, ``N`` for memory slots, ``W`` for
the slot width and ``R`` for the shift range (``S = 2R + 1`` offsets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import Tensor

from nma import Addressing, Options
from nma_plugins.addressing.content import content_weights


def interpolate(content: Tensor, prev_weights: Tensor, gate: Tensor) -> Tensor:
    """Interpolation gate, NTM eq. (7): ``w_g = g w_c + (1 - g) w_{t-1}``.

    Args:
        content: ``(B, H, N)`` content weightings ``w_c``.
        prev_weights: ``(B, H, N)`` the previous weightings ``w_{t-1}``.
        gate: ``(B, H, 1)`` gates ``g`` in ``[0, 1]``.

    Returns:
        ``(B, H, N)`` gated weightings ``w_g``.
    """
    return gate * content + (1 - gate) * prev_weights


def circular_shift(weights: Tensor, shift: Tensor) -> Tensor:
    """Rotation by a shift weighting, NTM eq. (8): ``w~(i) = sum_j w_g(j) s(i - j)``.

    Entry ``k`` of the shift weighting is the probability of the offset ``k - R``
    (so with ``R = 1``: ``[-1, 0, +1]``); a shift of ``+1`` moves weight from slot
    ``i`` to slot ``i + 1``, and from the last slot to slot 0. Offsets are taken
    modulo ``N``, so ranges wider than the memory wrap around more than once.

    Args:
        weights: ``(B, H, N)`` weightings ``w_g``.
        shift: ``(B, H, S)`` shift weightings over the ``S = 2R + 1`` offsets.

    Returns:
        ``(B, H, N)`` shifted weightings ``w~``.
    """
    shift_range = (shift.shape[-1] - 1) // 2
    # torch.roll(w, d)[i] = w[(i - d) mod N]: the term of offset d in eq. (8).
    rolled = torch.stack(
        [torch.roll(weights, offset, dims=-1) for offset in range(-shift_range, shift_range + 1)],
        dim=-1,
    )  # (B, H, N, S)
    return torch.matmul(rolled, shift.unsqueeze(-1)).squeeze(-1)


def sharpen(weights: Tensor, gamma: Tensor) -> Tensor:
    """Sharpening, NTM eq. (9): ``w(i) = w~(i)^gamma / sum_j w~(j)^gamma``.

    Args:
        weights: ``(B, H, N)`` non-negative weightings ``w~``, not all zero in a row.
        gamma: ``(B, H, 1)`` exponents ``gamma >= 1``.

    Returns:
        ``(B, H, N)`` weightings; each row is non-negative and sums to 1.
    """
    # Dividing by the row maximum first leaves eq. (9) unchanged (it is invariant to a
    # common scale) but keeps the largest term at 1, so a large gamma cannot
    # underflow every term to 0 and leave 0 / 0.
    scaled = weights / weights.amax(dim=-1, keepdim=True)
    # Guard against 0^gamma: the derivative of x^gamma with respect to gamma is
    # x^gamma log(x), which is 0 * -inf = NaN at x = 0 (a slot with no weight after a
    # one-hot initial weighting or an underflowed softmax). PyTorch's pow backward
    # masks that case at present; adding the dtype's smallest normal number keeps
    # log(x) finite without relying on it, keeps the derivative with respect to x
    # at x = 0 (which a clamp would zero), and changes the values by at most ~1e-308
    # in float64 (~1e-38 in float32).
    scaled = scaled + torch.finfo(scaled.dtype).tiny
    powered = scaled**gamma
    return powered / powered.sum(dim=-1, keepdim=True)


class NTMAddressing(Addressing):
    """The Neural Turing Machine's addressing (Graves et al. 2014, section 3.3, eqs. 5-9).

    Per head it consumes from the interface, in this order::

        key      W        passed through           (eqs. 5-6)
        strength 1        softplus -> beta >= 0    (eq. 5)
        gate     1        sigmoid  -> g in (0, 1)  (eq. 7)
        shift    2R + 1   softmax  -> s, sums to 1 (eq. 8)
        sharpen  1        1 + softplus -> gamma >= 1 (eq. 9)

    Args:
        config: an :class:`NTMAddressing.Config`.
        width: the slot width ``W`` (the key size).
        heads: the number of heads ``H`` addressed at once.
    """

    class Config(Options):
        """Options of the NTM addressing scheme."""

        shift_range: int = Field(
            1,
            ge=1,
            description=(
                "R: a head may shift its focus by any offset in -R..R slots per step "
                "(NTM eq. 8); the shift weighting has 2R+1 entries."
            ),
        )
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
        self.params = {
            "key": width,
            "strength": 1,
            "gate": 1,
            "shift": 2 * config.shift_range + 1,
            "sharpen": 1,
        }

    def constrain(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map raw interface values into each parameter's range.

        Args:
            raw: ``{"key": (B, H, W), "strength": (B, H, 1), "gate": (B, H, 1),
                "shift": (B, H, 2R+1), "sharpen": (B, H, 1)}`` unconstrained.

        Returns:
            The same names and shapes with ``strength >= 0``, ``gate`` in ``(0, 1)``,
            ``shift`` rows non-negative summing to 1 and ``sharpen >= 1``.
        """
        return {
            "key": raw["key"],
            "strength": F.softplus(raw["strength"]),
            "gate": torch.sigmoid(raw["gate"]),
            "shift": torch.softmax(raw["shift"], dim=-1),
            "sharpen": 1 + F.softplus(raw["sharpen"]),
        }

    def forward(self, params: dict[str, Tensor], memory: Tensor, prev_weights: Tensor) -> Tensor:
        """Content, interpolation, shift and sharpening for all heads (eqs. 5-9).

        Args:
            params: ``{"key": (B, H, W), "strength": (B, H, 1), "gate": (B, H, 1),
                "shift": (B, H, 2R+1), "sharpen": (B, H, 1)}``, constrained.
            memory: ``(B, N, W)`` the memory matrix.
            prev_weights: ``(B, H, N)`` the heads' weightings at the previous step.

        Returns:
            ``(B, H, N)`` weightings; each row is non-negative and sums to 1.
        """
        content = content_weights(params["key"], params["strength"], memory, self.config.eps)
        gated = interpolate(content, prev_weights, params["gate"])
        shifted = circular_shift(gated, params["shift"])
        return sharpen(shifted, params["sharpen"])
