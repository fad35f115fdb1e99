"""Slot usage of the sparse DNC: recency of access, and the least recently used slot.

Rae et al. (2016), "Scaling Memory-Augmented Neural Networks with Sparse Reads and
Writes", NIPS 2016, section 3 (SAM's sparse write and usage): a write goes either to
the locations read on the previous step or to the *least recently accessed* slot,
where a slot counts as accessed at step ``t`` when its read or write weight exceeds a
threshold ``delta`` (the paper's usage ``U^(2)``: time since the last non-negligible
access).

Here the time since the last access, ``tau_t(i)``, is kept in ``[0, 1]`` as a
recency ``u_t(i) = lambda^tau_t(i)`` (``0 < lambda < 1``), zero for a slot never
accessed:

    u_t(i) = 1                    if w^w_t(i) + sum_h w^{r,h}_t(i) > delta
           = lambda u_{t-1}(i)    otherwise

so the least recently accessed slot is ``argmin_i u_{t-1}(i)``, ties going to the
lowest slot index (never-used slots first, in index order). The usage only selects
a slot; it carries no gradient. ``lambda^tau`` underflows to 0 after about
``log(tiny) / log(lambda)`` steps without access (about 87,000 for ``lambda =
0.999`` in float32); such slots then tie with never-used ones.

Shapes use ``B`` for the batch, ``N`` for memory slots and ``C`` for the entries of
sparse weightings.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nma_plugins.memories.sdnc_sparse import densify


def least_used(usage: Tensor) -> Tensor:
    """The least recently used slot: ``argmin_i u(i)``, the lowest index among ties.

    Args:
        usage: ``(B, N)`` usage ``u_{t-1}``.

    Returns:
        ``(B,)`` int64 slot indices.
    """
    return torch.argmin(usage, dim=-1)


def update_usage(
    usage: Tensor, indices: Tensor, values: Tensor, decay: float, threshold: float
) -> Tensor:
    """Refresh the accessed slots to 1, decay the others by ``lambda``.

    Args:
        usage: ``(B, N)`` the previous usage ``u_{t-1}``.
        indices: ``(B, C)`` slots of this step's read and write weightings, together.
        values: ``(B, C)`` their weights (summed per slot).
        decay: ``lambda`` in ``(0, 1)``.
        threshold: ``delta``: a slot whose summed weight exceeds it was accessed.

    Returns:
        ``(B, N)`` the new usage ``u_t`` in ``[0, 1]``, detached from the graph.
    """
    usage = usage.detach()
    accessed = densify(indices, values.detach(), usage.shape[-1]) > threshold
    return torch.where(accessed, torch.ones_like(usage), decay * usage)
