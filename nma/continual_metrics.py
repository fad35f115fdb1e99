"""Continual-learning metrics from the accuracy matrix R.

``R[i][j]`` is the accuracy on the held-out data of experience ``j`` after training
on experiences ``0..i`` (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory for
Continual Learning", §2, the matrix ``R ∈ R^{T×T}``), and ``b[j]`` the accuracy on
experience ``j`` of the model before any training (their vector ``b̄``, "test
accuracy for each task at random initialization"). Indices here count from 0; the
papers count from 1.
"""

from __future__ import annotations

from collections.abc import Sequence

Matrix = Sequence[Sequence[float]]


def _square(r: Matrix) -> int:
    t = len(r)
    if t == 0 or any(len(row) < t for row in r):
        raise ValueError(f"the accuracy matrix must have T rows of at least T entries, got {r}")
    return t


def average_accuracy(r: Matrix) -> float:
    """ACC = (1/T) Σ_{i=1..T} R_{T,i}: the final accuracy averaged over experiences
    (Lopez-Paz & Ranzato 2017, §2, "Average Accuracy")."""
    t = _square(r)
    return sum(r[t - 1][i] for i in range(t)) / t


def backward_transfer(r: Matrix) -> float:
    """BWT = (1/(T-1)) Σ_{i=1..T-1} (R_{T,i} - R_{i,i}): how much learning later
    experiences changed the accuracy on earlier ones; negative is forgetting
    (Lopez-Paz & Ranzato 2017, §2, "Backward Transfer"). 0 when T = 1."""
    t = _square(r)
    if t == 1:
        return 0.0
    return sum(r[t - 1][i] - r[i][i] for i in range(t - 1)) / (t - 1)


def forward_transfer(r: Matrix, b: Sequence[float]) -> float:
    """FWT = (1/(T-1)) Σ_{i=2..T} (R_{i-1,i} - b_i): the accuracy on an experience
    before training on it, above that of the untrained model (Lopez-Paz & Ranzato
    2017, §2, "Forward Transfer"). 0 when T = 1."""
    t = _square(r)
    if len(b) < t:
        raise ValueError(f"b needs {t} entries, got {len(b)}")
    if t == 1:
        return 0.0
    return sum(r[i - 1][i] - b[i] for i in range(1, t)) / (t - 1)


def forgetting(r: Matrix, k: int | None = None) -> float:
    """Average forgetting after experience ``k`` (1-based; the last by default):
    F_k = (1/(k-1)) Σ_{j=1..k-1} f_j^k with f_j^k = max_{l=1..k-1} a_{l,j} - a_{k,j},
    the largest drop from the best accuracy ever reached on experience ``j``
    (Chaudhry et al. 2018, "Riemannian Walk for Incremental Learning", §4, the
    forgetting measure; ``a_{l,j} = R_{l,j}``). 0 when k = 1."""
    t = _square(r)
    k = t if k is None else k
    if not 1 <= k <= t:
        raise ValueError(f"k must be in 1..{t}, got {k}")
    if k == 1:
        return 0.0
    drops = [max(r[i][j] for i in range(k - 1)) - r[k - 1][j] for j in range(k - 1)]
    return sum(drops) / (k - 1)


def summarize(r: Matrix, b: Sequence[float] | None = None) -> dict[str, float]:
    """ACC, BWT, FWT (when ``b`` is given) and forgetting of a square ``r``."""
    out = {
        "acc": average_accuracy(r),
        "bwt": backward_transfer(r),
        "forgetting": forgetting(r),
    }
    if b is not None:
        out["fwt"] = forward_transfer(r, b)
    return out
