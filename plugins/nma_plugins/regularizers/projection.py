"""Gradient projections of GEM and A-GEM, as plain functions of flat vectors."""

from __future__ import annotations

import torch
from torch import Tensor


def box_qp(
    q: Tensor, p: Tensor, lower: float = 0.0, sweeps: int = 10_000, tol: float = 1e-12
) -> Tensor:
    """``argmin_v ½ vᵀ Q v + pᵀ v`` subject to ``v ≥ lower``, for a positive
    semi-definite ``Q`` (t × t), by cyclic coordinate descent in float64: each
    coordinate in turn is set to its exact constrained minimiser
    ``max(lower, v_k - (Q v + p)_k / Q_kk)``. Converges for PSD ``Q``; stops when no
    coordinate moves by more than ``tol`` (relative to the largest ``|v|``)."""
    q, p = q.double(), p.double()
    v = torch.full_like(p, lower)
    diagonal = q.diagonal()
    for _ in range(sweeps):
        largest = 0.0
        for k in range(len(p)):
            if diagonal[k] <= 0:
                continue
            new = max(lower, float(v[k] - (q[k] @ v + p[k]) / diagonal[k]))
            largest = max(largest, abs(new - float(v[k])))
            v[k] = new
        if largest <= tol * max(1.0, float(v.abs().max())):
            break
    return v


def gem_project(g: Tensor, memories: Tensor, margin: float = 0.0) -> Tensor:
    """GEM's projection of the gradient ``g`` (p,) against the memories' gradients
    ``G`` (t × p) (Lopez-Paz & Ranzato 2017, §3, eqs. 10–13).

    If ``⟨g, g_k⟩ ≥ 0`` for every ``k``, ``g`` is returned. Otherwise the primal
    ``min_g̃ ½ ||g - g̃||² s.t. G g̃ ≥ 0`` is solved through its dual
    ``min_v ½ vᵀ G Gᵀ v + gᵀ Gᵀ v s.t. v ≥ 0`` (eq. 13) and ``g̃ = Gᵀ v* + g``. A
    positive ``margin`` asks for ``v ≥ margin`` (the ``memory_strength`` of the
    authors' code), which biases ``g̃`` further toward the memories' gradients.
    Computed in float64; returned in ``g``'s dtype.
    """
    g64, m64 = g.double(), memories.double()
    if bool((m64 @ g64 >= 0).all()):
        return g
    v = box_qp(m64 @ m64.T, m64 @ g64, lower=margin)
    return (m64.T @ v + g64).to(g.dtype)


def agem_project(g: Tensor, reference: Tensor) -> Tensor:
    """A-GEM's projection (Chaudhry et al. 2019, eq. 11): when ``gᵀ g_ref < 0``,
    ``g̃ = g - (gᵀ g_ref / g_refᵀ g_ref) g_ref``, else ``g`` unchanged."""
    dot = torch.dot(g, reference)
    if dot >= 0:
        return g
    return g - dot / torch.dot(reference, reference).clamp_min(1e-30) * reference
