"""Measures of how a memory is used: efficiency, stability, retrieval, sparsity.

Every measure is defined on plain tensors (so it applies to any memory, and to
constructed cases with known answers) and :meth:`MemoryAnalyzer.summarize`
applies them to a :class:`nma.recording.Recording`. The definitions are repeated,
with examples, in ``docs/analysis.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from nma.recording import Recording


@dataclass(frozen=True)
class Efficiency:
    """How much of a memory is used, and how evenly.

    Attributes:
        utilization: the share of slots whose usage exceeds the threshold, in ``[0, 1]``.
        evenness: the normalised entropy of the usage, in ``[0, 1]``: 1 when every
            slot is used alike, 0 when one slot holds all of it (or nothing is used).
    """

    utilization: float
    evenness: float

    @property
    def efficiency(self) -> float:
        """``utilization * evenness``: 1 only when every slot is used, and used alike."""
        return self.utilization * self.evenness


@dataclass(frozen=True)
class Stability:
    """How much stored contents change between recorded steps.

    Attributes:
        drift: ``(T - 1,)`` the relative drift between consecutive snapshots, averaged
            over the batch, each in ``[0, 1]``.
        stability: ``1 - mean(drift)`` (1.0 when there is a single snapshot).
    """

    drift: Tensor
    stability: float


@dataclass(frozen=True)
class Sparsity:
    """How concentrated weightings are.

    Attributes:
        entropy: the mean entropy of the weightings, in nats (0 for one-hot, ``log N``
            for uniform).
        normalized_entropy: the mean of ``entropy / log N``, in ``[0, 1]``.
        sparsity: ``1 - normalized_entropy``.
    """

    entropy: float
    normalized_entropy: float
    sparsity: float


class MemoryAnalyzer:
    """Computes the measures; see each method for its definition.

    Args:
        threshold: the usage above which a slot counts as in use.
        eps: guards divisions by zero.
    """

    def __init__(self, threshold: float = 0.1, eps: float = 1e-8) -> None:
        self.threshold = threshold
        self.eps = eps

    def compute_memory_efficiency(self, usage: Tensor) -> Efficiency:
        """The share of slots in use, and how evenly they are used.

        For a usage vector ``u`` ``(..., N)`` (non-negative; the leading axes are
        averaged over)::

            utilization = (1/N) sum_i [u_i > threshold]
            p_i         = u_i / sum_j u_j
            evenness    = H(p) / log N,    H(p) = -sum_i p_i log p_i   (0 log 0 = 0)

        A vector with ``sum_j u_j = 0`` has evenness 0; with ``N = 1`` evenness is 1
        whenever the slot is used. Uniform usage above the threshold gives 1 and 1.
        """
        usage = usage.detach().double().clamp(min=0)
        slots = usage.shape[-1]
        utilization = (usage > self.threshold).double().mean().item()
        total = usage.sum(dim=-1, keepdim=True)
        used = total.squeeze(-1) > 0
        if slots == 1:
            evenness = used.double().mean().item()
        else:
            p = usage / total.clamp(min=self.eps)
            entropy = -(p * torch.log(p.clamp(min=1e-300))).sum(dim=-1)
            evenness = torch.where(used, entropy / math.log(slots), 0.0).mean().item()
        return Efficiency(utilization=utilization, evenness=min(max(evenness, 0.0), 1.0))

    def compute_memory_stability(self, contents: Tensor) -> Stability:
        """The drift of stored contents between consecutive snapshots.

        ``contents`` is ``(T, ..., N, W)``: time first, then any batch axes, then one
        memory matrix per snapshot. For consecutive snapshots ``M_{t-1}``, ``M_t``,
        with ``||.||`` the Frobenius norm over ``(N, W)``::

            d_t = ||M_t - M_{t-1}|| / (||M_t|| + ||M_{t-1}|| + eps)

        which lies in ``[0, 1]``: 0 when nothing changed (an empty memory that stays
        empty included), 1 when the contents were replaced by their negation, erased,
        or written into an empty memory. ``drift`` averages ``d_t`` over the batch
        axes and ``stability = 1 - mean_t drift_t``: a memory written once and never
        changed afterwards is perfectly stable (1.0). Snapshots are the recorded
        steps, so with sub-sampled contents ``d_t`` spans several steps.
        """
        contents = contents.detach().double()
        if contents.shape[0] < 2:
            return Stability(drift=torch.zeros(0, dtype=torch.float64), stability=1.0)
        before, after = contents[:-1], contents[1:]
        change = torch.linalg.matrix_norm(after - before)
        scale = torch.linalg.matrix_norm(after) + torch.linalg.matrix_norm(before) + self.eps
        drift = (change / scale).reshape(change.shape[0], -1).mean(dim=1)
        return Stability(drift=drift, stability=1.0 - drift.mean().item())

    def compute_retrieval_accuracy(self, written: Tensor, retrieved: Tensor) -> float:
        """Whether reading with a key returns what was written under that key.

        ``written`` ``(..., P, W)`` holds ``P`` values ``v_1 .. v_P`` stored under
        keys ``k_1 .. k_P``; ``retrieved`` ``(..., P, W)`` holds ``r_1 .. r_P``, what
        reading with ``k_1 .. k_P`` returned. Read ``i`` is correct when ``r_i`` is
        closer, by cosine similarity, to ``v_i`` than to any other stored value::

            accuracy = mean_i [ argmax_j cos(r_i, v_j) = i ]

        (a tie goes to the lowest ``j``). 1.0 for perfect recall, ``1/P`` on average
        for reads unrelated to the keys.
        """
        if written.shape != retrieved.shape:
            raise ValueError(
                f"written {tuple(written.shape)} and retrieved {tuple(retrieved.shape)} differ"
            )
        v = torch.nn.functional.normalize(written.detach().double(), dim=-1, eps=self.eps)
        r = torch.nn.functional.normalize(retrieved.detach().double(), dim=-1, eps=self.eps)
        similarity = r @ v.transpose(-1, -2)  # (..., P, P): row i, read i against value j
        best = similarity.argmax(dim=-1)
        target = torch.arange(written.shape[-2], device=best.device)
        return (best == target).double().mean().item()

    def compute_attention_sparsity(self, weights: Tensor) -> Sparsity:
        """The entropy of weightings ``(..., N)`` over ``N`` slots.

        Each weighting is made a distribution first, ``p_i = |w_i| / sum_j |w_j|``
        (gated, outer-product or multi-level weightings need not sum to 1), then::

            H(p) = -sum_i p_i log p_i      (nats; 0 log 0 = 0)

        averaged over every leading axis (steps, sequences, heads). Weightings that
        are all zero (a head that did not act) are left out. A one-hot weighting has
        entropy 0, a uniform one ``log N``.
        """
        weights = weights.detach().double().abs()
        slots = weights.shape[-1]
        total = weights.sum(dim=-1)
        keep = total > 0
        if not bool(keep.any()):
            return Sparsity(entropy=0.0, normalized_entropy=0.0, sparsity=1.0)
        p = weights[keep] / total[keep].unsqueeze(-1)
        entropy = -(p * torch.log(p.clamp(min=1e-300))).sum(dim=-1)
        mean = entropy.mean().item()
        normalized = mean / math.log(slots) if slots > 1 else 0.0
        return Sparsity(entropy=mean, normalized_entropy=normalized, sparsity=1.0 - normalized)

    def usage(self, recording: Recording) -> tuple[Tensor, str] | None:
        """``(usage (T, S, N), source)`` of a recording, or ``None``.

        The memory's own ``usage`` where it records one (source ``"usage"``); otherwise
        the write weight each slot has received so far, ``min(1, sum_{s <= t} sum_h
        |w^w_{s,h}|)`` (source ``"cumulative writes"``).
        """
        if "usage" in recording.series:
            return recording.series["usage"].double(), "usage"
        writes = recording.series.get("write_weights")
        if writes is None or writes.dim() != 4:
            return None
        return writes.double().abs().sum(dim=2).cumsum(dim=0).clamp(max=1.0), "cumulative writes"

    def summarize(self, recording: Recording) -> dict[str, float]:
        """Every measure that ``recording`` allows, as one flat dictionary.

        ``utilization``, ``evenness``, ``efficiency``: of the usage (:meth:`usage`) at
        the last step; ``stability``: of the ``memory`` snapshots;
        ``read_entropy``/``write_entropy`` and ``read_sparsity``/``write_sparsity``:
        of every step's weightings.
        """
        out: dict[str, float] = {}
        found = self.usage(recording)
        if found is not None:
            efficiency = self.compute_memory_efficiency(found[0][-1])
            out.update(
                utilization=efficiency.utilization,
                evenness=efficiency.evenness,
                efficiency=efficiency.efficiency,
            )
        memory = recording.contents.get("memory")
        if memory is not None and memory.dim() >= 4:
            out["stability"] = self.compute_memory_stability(memory).stability
        for kind in ("read", "write"):
            weights = recording.series.get(f"{kind}_weights")
            if weights is not None and weights.is_floating_point():
                sparsity = self.compute_attention_sparsity(weights)
                out[f"{kind}_entropy"] = sparsity.entropy
                out[f"{kind}_sparsity"] = sparsity.sparsity
        return out
