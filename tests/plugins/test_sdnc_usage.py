"""Usage (recency of access) and the least recently used slot of the sparse DNC."""

from __future__ import annotations

import numpy as np
import torch

from nma_plugins.memories.sdnc_usage import least_used, update_usage

TOL = 1e-12


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def test_least_used_breaks_ties_by_index() -> None:
    usage = t([[0.5, 0.0, 0.3, 0.0], [0.2, 0.2, 0.9, 0.2], [1.0, 0.9, 0.8, 0.7]])
    assert least_used(usage).tolist() == [1, 0, 3]


def test_update_usage_by_hand() -> None:
    # Slot 0: 0.003 + 0.004 > 0.005 (summed over entries): accessed -> 1.
    # Slot 2: 0.004 < 0.005: not accessed -> 0.5 * 0.8. Slot 3: never touched -> 0.5 * 0.2.
    usage = t([[0.1, 0.6, 0.8, 0.2]])
    indices = torch.tensor([[0, 0, 2, 1]])
    values = t([[0.003, 0.004, 0.004, 0.9]])
    got = update_usage(usage, indices, values, decay=0.5, threshold=0.005)
    np.testing.assert_allclose(got.numpy(), [[1.0, 1.0, 0.4, 0.1]], atol=TOL)


def test_update_usage_matches_reference_and_is_detached() -> None:
    rng = np.random.default_rng(0)
    usage = rng.uniform(size=(2, 7))
    indices = rng.integers(0, 7, size=(2, 5))
    values = rng.uniform(0, 0.01, size=(2, 5))
    decay, threshold = 0.9, 0.005
    vals = t(values).requires_grad_()
    got = update_usage(t(usage).requires_grad_(), torch.tensor(indices), vals, decay, threshold)
    assert not got.requires_grad
    for b in range(2):
        summed = [0.0] * 7
        for i, v in zip(indices[b], values[b], strict=True):
            summed[i] += v
        want = [1.0 if summed[i] > threshold else decay * usage[b, i] for i in range(7)]
        np.testing.assert_allclose(got[b].numpy(), want, atol=TOL)


def test_least_recently_accessed_order() -> None:
    # Access slots 2, 0, 1 in turn (3 never): the least used is 3, then 2, 0, 1.
    usage = torch.zeros(1, 4, dtype=torch.float64)
    for slot in (2, 0, 1):
        usage = update_usage(usage, torch.tensor([[slot]]), t([[1.0]]), 0.9, 0.005)
    assert int(least_used(usage)[0]) == 3
    order = torch.sort(usage, dim=-1, stable=True).indices[0].tolist()
    assert order == [3, 2, 0, 1]
