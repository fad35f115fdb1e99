"""Dynamic memory allocation of the Differentiable Neural Computer: usage and free list.

Graves et al. (2016), "Hybrid computing using a neural network with dynamic external
memory", Nature 538, 471-476, Methods, section "Dynamic memory allocation". With
``f^i_t`` the free gate of read head ``i``, ``w^{r,i}_{t-1}`` its previous read
weighting and ``w^w_{t-1}`` the previous write weighting:

    psi_t = prod_i (1 - f^i_t w^{r,i}_{t-1})                       memory retention
    u_t   = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi_t       usage
    phi_t = SortIndicesAscending(u_t)                               free list
    a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i<j} u_t[phi_t[i]]    allocation weighting

(``o`` is the elementwise product.) Slots of equal usage are ordered by their index
(a stable sort), so the allocation is a deterministic function of the usage.

The exclusive cumulative product ``prod_{i<j}`` is computed in log space,
``exp(sum_{i<j} log max(u_i, eps))``, instead of with ``torch.cumprod``: the backward
of ``torch.cumprod`` checks its input for zeros with a host synchronisation
(``.item()``), which would stall CUDA streams and break CUDA graphs. The floor ``eps``
keeps the logarithm finite; it changes a product only where a factor is below
``eps`` (the product is then below ``eps`` instead of 0) and zeroes the gradient
with respect to such a factor.

Shapes use ``B`` for the batch, ``R`` for read heads and ``N`` for memory slots.
"""

from __future__ import annotations

import torch
from torch import Tensor


def retention(free_gates: Tensor, read_weights: Tensor) -> Tensor:
    """Memory retention ``psi_t = prod_i (1 - f^i_t w^{r,i}_{t-1})``.

    The product over the read heads is a loop over a handful of heads: ``torch.prod``'s
    backward synchronises with the host to look for zeros.

    Args:
        free_gates: ``(B, R)`` free gates ``f^i_t`` in ``[0, 1]``.
        read_weights: ``(B, R, N)`` the previous read weightings ``w^{r,i}_{t-1}``.

    Returns:
        ``(B, N)`` retention in ``[0, 1]``.
    """
    kept = 1 - free_gates.unsqueeze(-1) * read_weights  # (B, R, N)
    psi = kept[:, 0]
    for head in range(1, kept.shape[1]):
        psi = psi * kept[:, head]
    return psi


def update_usage(usage: Tensor, write_weights: Tensor, psi: Tensor) -> Tensor:
    """Usage ``u_t = (u_{t-1} + w^w_{t-1} - u_{t-1} o w^w_{t-1}) o psi_t``.

    Args:
        usage: ``(B, N)`` the previous usage ``u_{t-1}`` in ``[0, 1]``.
        write_weights: ``(B, N)`` the previous write weighting ``w^w_{t-1}``.
        psi: ``(B, N)`` the retention ``psi_t``.

    Returns:
        ``(B, N)`` the new usage ``u_t`` in ``[0, 1]``.
    """
    return (usage + write_weights - usage * write_weights) * psi


def exclusive_cumprod(values: Tensor, eps: float) -> Tensor:
    """``out[..., j] = prod_{i<j} values[..., i]`` (1 for ``j = 0``), without host syncs.

    Computed as ``exp(sum_{i<j} log max(values_i, eps))``; see the module docstring.

    Args:
        values: ``(..., N)`` non-negative factors.
        eps: floor of each factor inside the logarithm, ``> 0``.

    Returns:
        ``(..., N)`` the exclusive products.
    """
    logs = torch.log(values.clamp_min(eps))
    sums = torch.cumsum(logs, dim=-1)
    shifted = torch.cat([torch.zeros_like(sums[..., :1]), sums[..., :-1]], dim=-1)
    return torch.exp(shifted)


def allocation_weighting(usage: Tensor, eps: float) -> Tensor:
    """Allocation weighting ``a_t[phi_t[j]] = (1 - u_t[phi_t[j]]) prod_{i<j} u_t[phi_t[i]]``.

    The free list ``phi_t`` sorts the slots by ascending usage with a stable sort,
    so ties go to the lower slot index first. The sort's indices are constants for
    autograd; gradients flow through the sorted usage values.

    Args:
        usage: ``(B, N)`` usage ``u_t`` in ``[0, 1]``.
        eps: see :func:`exclusive_cumprod`.

    Returns:
        ``(B, N)`` allocation weighting, non-negative, summing to at most 1.
    """
    sorted_usage, free_list = torch.sort(usage, dim=-1, stable=True)  # (B, N) each
    sorted_allocation = (1 - sorted_usage) * exclusive_cumprod(sorted_usage, eps)
    return torch.zeros_like(usage).scatter(-1, free_list, sorted_allocation)
