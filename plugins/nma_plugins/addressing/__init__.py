"""First-party addressing schemes: ``content`` and ``ntm`` (Graves et al. 2014), ``topk``
(Rae et al. 2016)."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.addressing.content import ContentAddressing
from nma_plugins.addressing.ntm import NTMAddressing
from nma_plugins.addressing.topk import TopKAddressing

__all__ = ["ContentAddressing", "NTMAddressing", "TopKAddressing", "nma_register_addressings"]


@hookimpl
def nma_register_addressings(register: Register) -> None:
    """Register the content-only, the full NTM and the sparse top-K addressing schemes."""
    register("content", ContentAddressing)
    register("ntm", NTMAddressing)
    register("topk", TopKAddressing)
