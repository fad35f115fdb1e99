"""Sparse-vector helpers of the sparse DNC against dense float64 references."""

from __future__ import annotations

import numpy as np
import torch

from nma_plugins.memories.sdnc_sparse import coalesce, densify, gather_rows, scatter_rows

TOL = 1e-12


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def ref_dense(indices, values, slots):
    out = [0.0] * slots
    for i, v in zip(indices, values, strict=True):
        out[i] += v
    return out


def test_coalesce_by_hand() -> None:
    # Slot 3 appears twice (0.1 + 0.2 = 0.3); the two largest sums are slot 1 and slot 3.
    idx, val = coalesce(torch.tensor([[3, 1, 3, 0]]), t([[0.1, 0.5, 0.2, 0.05]]), 2, 6)
    assert idx.tolist() == [[1, 3]]
    np.testing.assert_allclose(val.numpy(), [[0.5, 0.3]], atol=TOL)


def test_coalesce_fills_with_distinct_unused_slots() -> None:
    idx, val = coalesce(torch.tensor([[2, 2, 2]]), t([[0.1, 0.1, 0.1]]), 3, 10)
    assert idx[0, 0] == 2 and len(set(idx[0].tolist())) == 3
    np.testing.assert_allclose(val.numpy(), [[0.3, 0.0, 0.0]], atol=TOL)
    # Fewer slots than k + candidates: the filler covers every slot.
    idx, val = coalesce(torch.tensor([[0, 0, 0, 0]]), t([[0.25] * 4]), 3, 3)
    assert sorted(idx[0].tolist()) == [0, 1, 2]
    np.testing.assert_allclose(densify(idx, val, 3).numpy(), [[1.0, 0.0, 0.0]], atol=TOL)


def test_coalesce_matches_dense_reference() -> None:
    rng = np.random.default_rng(0)
    slots, c = 9, 12
    indices = rng.integers(0, slots, size=(3, 2, c))  # many duplicates
    values = rng.uniform(size=(3, 2, c))
    for k in (1, 3, slots):
        idx, val = coalesce(torch.tensor(indices), t(values), k, slots)
        assert idx.shape == val.shape == (3, 2, k)
        for a in range(3):
            for b in range(2):
                assert len(set(idx[a, b].tolist())) == k  # distinct
                dense = ref_dense(indices[a, b], values[a, b], slots)
                keep = sorted(range(slots), key=lambda i: -dense[i])[:k]
                want = [dense[i] if i in keep else 0.0 for i in range(slots)]
                got = densify(idx[a, b], val[a, b], slots)
                np.testing.assert_allclose(got.numpy(), want, atol=TOL)
                assert list(val[a, b]) == sorted(val[a, b].tolist(), reverse=True)


def test_coalesce_gradcheck() -> None:
    rng = np.random.default_rng(1)
    indices = torch.tensor(rng.integers(0, 6, size=(2, 7)))
    values = t(rng.uniform(size=(2, 7))).requires_grad_()
    assert torch.autograd.gradcheck(lambda v: coalesce(indices, v, 3, 6)[1], (values,))


def test_densify_adds_duplicates() -> None:
    got = densify(torch.tensor([[0, 2, 0]]), t([[0.5, 0.25, 0.125]]), 4)
    np.testing.assert_allclose(got.numpy(), [[0.625, 0.0, 0.25, 0.0]], atol=TOL)


def test_gather_and_scatter_rows() -> None:
    table = t(np.arange(2 * 5 * 3, dtype=float).reshape(2, 5, 3))
    indices = torch.tensor([[[4, 0]], [[1, 1]]])  # (B, 1, 2)
    got = gather_rows(table, indices)
    assert got.shape == (2, 1, 2, 3)
    torch.testing.assert_close(got[0, 0, 0], table[0, 4], rtol=0, atol=0)
    torch.testing.assert_close(got[1, 0, 1], table[1, 1], rtol=0, atol=0)
    rows = -torch.ones(2, 2, 3, dtype=torch.float64)
    out = scatter_rows(table, torch.tensor([[0, 3], [2, 4]]), rows)
    assert bool((out[0, [0, 3]] == -1).all()) and bool((out[1, [2, 4]] == -1).all())
    torch.testing.assert_close(out[0, [1, 2, 4]], table[0, [1, 2, 4]], rtol=0, atol=0)
    assert float(table[0, 0, 0]) == 0.0  # out of place
