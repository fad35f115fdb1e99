"""DNC dynamic memory allocation (Methods) against float64 references written from the paper."""

from __future__ import annotations

import math

import numpy as np
import torch

from nma_plugins.memories.dnc_allocation import (
    allocation_weighting,
    exclusive_cumprod,
    retention,
    update_usage,
)

B, R, N = 2, 3, 6
TOL = 1e-10
EPS = 1e-30


# --- independent references (plain Python floats, straight from the Methods) -------------


def ref_retention(free, read_weights):
    """psi[i] = prod_h (1 - f_h w_h[i]). free (R,), read_weights (R, N) -> (N,)."""
    out = []
    for i in range(len(read_weights[0])):
        psi = 1.0
        for f, w in zip(free, read_weights, strict=True):
            psi *= 1 - f * w[i]
        out.append(psi)
    return out


def ref_usage(usage, write, psi):
    """u[i] = (u[i] + w[i] - u[i] w[i]) psi[i]."""
    return [(u + w - u * w) * p for u, w, p in zip(usage, write, psi, strict=True)]


def ref_allocation(usage):
    """a[phi[j]] = (1 - u[phi[j]]) prod_{i<j} u[phi[i]], phi sorted by (usage, index)."""
    free_list = sorted(range(len(usage)), key=lambda i: (usage[i], i))
    out = [0.0] * len(usage)
    product = 1.0
    for slot in free_list:
        out[slot] = (1 - usage[slot]) * product
        product *= usage[slot]
    return out


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


# --- tests -------------------------------------------------------------------------------


def test_retention_matches_reference() -> None:
    rng = np.random.default_rng(0)
    free = rng.uniform(size=(B, R))
    reads = rng.dirichlet(np.ones(N), size=(B, R))
    got = retention(t(free), t(reads))
    assert got.shape == (B, N)
    for b in range(B):
        np.testing.assert_allclose(got[b].numpy(), ref_retention(free[b], reads[b]), atol=TOL)


def test_retention_single_head_and_full_free() -> None:
    # One head, free gate 1, weight 1 on slot 2: slot 2 is fully released, others kept.
    reads = torch.zeros(1, 1, 4, dtype=torch.float64)
    reads[0, 0, 2] = 1.0
    got = retention(torch.ones(1, 1, dtype=torch.float64), reads)
    assert got.tolist() == [[1.0, 1.0, 0.0, 1.0]]


def test_usage_matches_reference() -> None:
    rng = np.random.default_rng(1)
    usage = rng.uniform(size=(B, N))
    write = rng.dirichlet(np.ones(N), size=B) * 0.9
    psi = rng.uniform(size=(B, N))
    got = update_usage(t(usage), t(write), t(psi))
    for b in range(B):
        np.testing.assert_allclose(got[b].numpy(), ref_usage(usage[b], write[b], psi[b]), atol=TOL)


def test_usage_by_hand() -> None:
    # u = 0.5, w = 0.5 -> 0.5 + 0.5 - 0.25 = 0.75, times psi = 0.5 -> 0.375.
    got = update_usage(t([[0.5, 0.0]]), t([[0.5, 1.0]]), t([[0.5, 1.0]]))
    np.testing.assert_allclose(got.numpy(), [[0.375, 1.0]], atol=TOL)


def test_exclusive_cumprod() -> None:
    values = t([[0.5, 0.25, 2.0, 0.1]])
    np.testing.assert_allclose(
        exclusive_cumprod(values, EPS).numpy(), [[1.0, 0.5, 0.125, 0.25]], atol=TOL
    )
    # A zero factor: everything after it is (at most eps-sized, i.e.) zero.
    got = exclusive_cumprod(t([[0.5, 0.0, 0.5]]), EPS)
    np.testing.assert_allclose(got.numpy(), [[1.0, 0.5, 0.0]], atol=TOL)


def test_allocation_matches_reference() -> None:
    rng = np.random.default_rng(2)
    usage = rng.uniform(size=(B, N))
    got = allocation_weighting(t(usage), EPS)
    assert got.shape == (B, N)
    for b in range(B):
        np.testing.assert_allclose(got[b].numpy(), ref_allocation(list(usage[b])), atol=TOL)
        assert float(got[b].sum()) <= 1 + TOL
        assert bool((got[b] >= 0).all())


def test_allocation_ties_by_hand() -> None:
    # usage (0.5, 0.2, 0.5, 0.2, 0.9): the free list (stable, ties by index) is 1, 3, 0, 2, 4.
    # a[1] = 0.8; a[3] = 0.8 * 0.2; a[0] = 0.5 * 0.04; a[2] = 0.5 * 0.02; a[4] = 0.1 * 0.01.
    got = allocation_weighting(t([[0.5, 0.2, 0.5, 0.2, 0.9]]), EPS)
    np.testing.assert_allclose(got.numpy(), [[0.02, 0.8, 0.01, 0.16, 0.001]], atol=TOL)
    # All free: the lowest index gets everything.
    np.testing.assert_allclose(
        allocation_weighting(torch.zeros(1, 4, dtype=torch.float64), EPS).numpy(),
        [[1.0, 0.0, 0.0, 0.0]],
        atol=TOL,
    )
    # All equal and partly used: allocation decreases with the index.
    got = allocation_weighting(torch.full((1, 3), 0.5, dtype=torch.float64), EPS)
    np.testing.assert_allclose(got.numpy(), [[0.5, 0.25, 0.125]], atol=TOL)


def test_allocation_ties_match_reference_with_many_ties() -> None:
    rng = np.random.default_rng(3)
    usage = rng.choice([0.0, 0.3, 0.7, 1.0], size=(4, 9))  # many exact ties, zeros and ones
    got = allocation_weighting(t(usage), EPS)
    for b in range(usage.shape[0]):
        np.testing.assert_allclose(got[b].numpy(), ref_allocation(list(usage[b])), atol=TOL)


def test_allocation_sort_order_is_ascending_usage() -> None:
    # With usage 0 < ... the least used slot gets the most; a used slot (u=1) gets nothing.
    usage = t([[0.9, 0.1, 1.0, 0.4]])
    got = allocation_weighting(usage, EPS)[0].tolist()
    assert got[1] == max(got)
    assert math.isclose(got[1], 0.9, abs_tol=TOL)
    assert math.isclose(got[3], 0.6 * 0.1, abs_tol=TOL)
    assert math.isclose(got[0], 0.1 * 0.1 * 0.4, abs_tol=TOL)
    assert got[2] == 0.0


def test_allocation_float32_with_zero_usage_is_finite() -> None:
    usage = torch.tensor([[0.0, 0.0, 1.0, 0.5]], requires_grad=True)
    got = allocation_weighting(usage, torch.finfo(torch.float32).tiny)
    got.sum().backward()
    assert bool(torch.isfinite(got).all()) and bool(torch.isfinite(usage.grad).all())
    torch.testing.assert_close(got.detach(), torch.tensor([[1.0, 0.0, 0.0, 0.0]]))


def test_allocation_gradcheck() -> None:
    rng = np.random.default_rng(4)
    usage = t(rng.uniform(0.05, 0.95, size=(B, N))).requires_grad_()
    assert torch.autograd.gradcheck(lambda u: allocation_weighting(u, EPS), (usage,))


def test_retention_and_usage_gradcheck() -> None:
    rng = np.random.default_rng(5)
    free = t(rng.uniform(size=(B, R))).requires_grad_()
    reads = t(rng.dirichlet(np.ones(N), size=(B, R))).requires_grad_()
    usage = t(rng.uniform(size=(B, N))).requires_grad_()
    write = t(rng.dirichlet(np.ones(N), size=B)).requires_grad_()

    def fn(free, reads, usage, write):
        return update_usage(usage, write, retention(free, reads))

    assert torch.autograd.gradcheck(fn, (free, reads, usage, write))
