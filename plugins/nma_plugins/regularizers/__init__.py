"""Regularizers: ``l2``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.regularizers.l2 import L2Regularizer


@hookimpl
def nma_register_regularizers(register: Register) -> None:
    """Register the first-party regularizers."""
    register("l2", L2Regularizer)
