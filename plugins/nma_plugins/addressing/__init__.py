"""First-party addressing schemes: ``content`` and ``ntm`` (Graves et al. 2014)."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.addressing.content import ContentAddressing
from nma_plugins.addressing.ntm import NTMAddressing

__all__ = ["ContentAddressing", "NTMAddressing", "nma_register_addressings"]


@hookimpl
def nma_register_addressings(register: Register) -> None:
    """Register the content-only and the full NTM addressing schemes."""
    register("content", ContentAddressing)
    register("ntm", NTMAddressing)
