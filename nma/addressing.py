"""The ``Addressing`` interface: head parameters + memory -> a weighting over slots."""

from __future__ import annotations

from typing import ClassVar

from torch import Tensor, nn

from nma.options import Options


class Addressing(nn.Module):
    """Turns per-head parameters and the memory matrix into weightings over slots.

    A memory that supports several schemes builds its addressing through
    :class:`nma.AddressingFactory` (chosen with ``--addressing``), so schemes are
    swappable where the mathematics allows.

    Subclasses set ``Config`` (their options) and, in ``__init__``, ``params``:
    the names and per-head widths of the parameters they need from the controller's
    interface vector (for example ``{"key": width, "strength": 1}``).

    Args:
        config: an instance of ``Config``.
        width: the width ``W`` of one memory slot (the key size).
        heads: how many heads this module addresses at once.
    """

    Config: ClassVar[type[Options]] = Options
    params: dict[str, int]

    def __init__(self, config: Options, width: int, heads: int) -> None:
        super().__init__()
        self.config = config
        self.width = width
        self.heads = heads
        self.params = {}

    @property
    def params_size(self) -> int:
        """Interface values consumed per head: the sum of ``params``' widths."""
        return sum(self.params.values())

    def split(self, raw: Tensor) -> dict[str, Tensor]:
        """Cut an unconstrained ``(B, heads, params_size)`` block into named parameters.

        Returns ``{name: (B, heads, params[name])}`` after :meth:`constrain`.
        """
        out: dict[str, Tensor] = {}
        start = 0
        for name, size in self.params.items():
            out[name] = raw[..., start : start + size]
            start += size
        return self.constrain(out)

    def constrain(self, raw: dict[str, Tensor]) -> dict[str, Tensor]:
        """Map unconstrained interface values into each parameter's valid range.

        For example a key strength goes through softplus, a gate through a sigmoid.
        The default returns ``raw`` unchanged.
        """
        return raw

    def forward(self, params: dict[str, Tensor], memory: Tensor, prev_weights: Tensor) -> Tensor:
        """Compute this step's weightings.

        Args:
            params: ``{name: (B, heads, width_of_name)}``, already constrained.
            memory: ``(B, slots, width)`` memory matrix.
            prev_weights: ``(B, heads, slots)`` the heads' previous weightings.

        Returns:
            ``(B, heads, slots)`` weightings; each row is non-negative and sums to 1
            (or to at most 1 for schemes that allow it).
        """
        raise NotImplementedError
