"""DNC temporal memory linkage (Methods) against float64 references written from the paper."""

from __future__ import annotations

import numpy as np
import torch

from nma_plugins.memories.dnc_linkage import (
    directional_weightings,
    update_link,
    update_precedence,
)

B, R, N = 2, 2, 5
TOL = 1e-10


# --- independent references (plain Python floats, straight from the Methods) -------------


def ref_precedence(prec, write):
    total = sum(write)
    return [(1 - total) * p + w for p, w in zip(prec, write, strict=True)]


def ref_link(link, write, prec):
    n = len(write)
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if i != j:
                out[i][j] = (1 - write[i] - write[j]) * link[i][j] + write[i] * prec[j]
    return out


def ref_forward(link, weights):
    """f[i] = sum_j L[i][j] w[j]."""
    n = len(weights)
    return [sum(link[i][j] * weights[j] for j in range(n)) for i in range(n)]


def ref_backward(link, weights):
    """b[j] = sum_i L[i][j] w[i]."""
    n = len(weights)
    return [sum(link[i][j] * weights[i] for i in range(n)) for j in range(n)]


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def random_link(rng: np.random.Generator, batch: int = B) -> np.ndarray:
    link = rng.uniform(size=(batch, N, N)) / N
    for b in range(batch):
        np.fill_diagonal(link[b], 0.0)
    return link


# --- tests -------------------------------------------------------------------------------


def test_precedence_matches_reference() -> None:
    rng = np.random.default_rng(0)
    prec = rng.dirichlet(np.ones(N), size=B) * 0.8
    write = rng.dirichlet(np.ones(N), size=B) * 0.7
    got = update_precedence(t(prec), t(write))
    for b in range(B):
        np.testing.assert_allclose(got[b].numpy(), ref_precedence(prec[b], write[b]), atol=TOL)


def test_precedence_by_hand() -> None:
    # A full write on slot 1 replaces the precedence; no write leaves it unchanged.
    prec = t([[0.5, 0.0, 0.5, 0.0]])
    full = update_precedence(prec, t([[0.0, 1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(full.numpy(), [[0.0, 1.0, 0.0, 0.0]], atol=TOL)
    none = update_precedence(prec, torch.zeros(1, 4, dtype=torch.float64))
    np.testing.assert_allclose(none.numpy(), prec.numpy(), atol=TOL)


def test_link_matches_reference_over_steps() -> None:
    rng = np.random.default_rng(1)
    link = np.zeros((B, N, N))
    prec = np.zeros((B, N))
    got_link, got_prec = t(link), t(prec)
    for _ in range(4):
        write = rng.dirichlet(np.ones(N), size=B) * rng.uniform(0.3, 1.0, size=(B, 1))
        new_link = update_link(got_link, t(write), got_prec)
        new_prec = update_precedence(got_prec, t(write))
        for b in range(B):
            link[b] = np.array(ref_link(link[b].tolist(), write[b], prec[b]))
            prec[b] = np.array(ref_precedence(prec[b], write[b]))
        np.testing.assert_allclose(new_link.numpy(), link, atol=TOL)
        np.testing.assert_allclose(new_prec.numpy(), prec, atol=TOL)
        got_link, got_prec = new_link, new_prec
    assert float(got_link.abs().sum()) > 0.1  # the test exercised non-trivial links


def test_link_zero_diagonal_and_range() -> None:
    rng = np.random.default_rng(2)
    link = t(rng.uniform(size=(B, N, N)))  # even with a non-zero diagonal coming in
    write = t(rng.dirichlet(np.ones(N), size=B))
    prec = t(rng.dirichlet(np.ones(N), size=B))
    got = update_link(link, write, prec)
    for b in range(B):
        assert torch.diagonal(got[b]).abs().max() == 0
    # From a valid link matrix the entries stay in [0, 1] and rows/columns sum to <= 1.
    valid = update_link(t(random_link(rng)), write, prec)
    assert bool((valid >= -TOL).all()) and bool((valid <= 1 + TOL).all())
    assert bool((valid.sum(-1) <= 1 + TOL).all()) and bool((valid.sum(-2) <= 1 + TOL).all())


def test_link_by_hand_sequence() -> None:
    # Write slot 0 fully, then slot 2 fully: L[2, 0] = 1, everything else 0; then the
    # forward weighting from slot 0 is slot 2, the backward from slot 2 is slot 0.
    zeros = torch.zeros(1, 4, dtype=torch.float64)
    link = torch.zeros(1, 4, 4, dtype=torch.float64)
    w0 = t([[1.0, 0.0, 0.0, 0.0]])
    w2 = t([[0.0, 0.0, 1.0, 0.0]])
    link = update_link(link, w0, zeros)
    prec = update_precedence(zeros, w0)
    link = update_link(link, w2, prec)
    want = np.zeros((1, 4, 4))
    want[0, 2, 0] = 1.0
    np.testing.assert_allclose(link.numpy(), want, atol=TOL)
    forward, backward = directional_weightings(link, torch.stack([w0, w2], dim=1))
    np.testing.assert_allclose(forward[0, 0].numpy(), [0.0, 0.0, 1.0, 0.0], atol=TOL)
    np.testing.assert_allclose(backward[0, 1].numpy(), [1.0, 0.0, 0.0, 0.0], atol=TOL)
    np.testing.assert_allclose(forward[0, 1].numpy(), np.zeros(4), atol=TOL)
    np.testing.assert_allclose(backward[0, 0].numpy(), np.zeros(4), atol=TOL)


def test_directional_weightings_match_reference() -> None:
    rng = np.random.default_rng(3)
    link = random_link(rng)
    reads = rng.dirichlet(np.ones(N), size=(B, R))
    forward, backward = directional_weightings(t(link), t(reads))
    assert forward.shape == backward.shape == (B, R, N)
    for b in range(B):
        for h in range(R):
            np.testing.assert_allclose(
                forward[b, h].numpy(), ref_forward(link[b].tolist(), reads[b, h]), atol=TOL
            )
            np.testing.assert_allclose(
                backward[b, h].numpy(), ref_backward(link[b].tolist(), reads[b, h]), atol=TOL
            )


def test_linkage_gradcheck() -> None:
    rng = np.random.default_rng(4)
    link = t(random_link(rng)).requires_grad_()
    write = t(rng.dirichlet(np.ones(N), size=B)).requires_grad_()
    prec = t(rng.dirichlet(np.ones(N), size=B)).requires_grad_()
    reads = t(rng.dirichlet(np.ones(N), size=(B, R))).requires_grad_()

    def fn(link, write, prec, reads):
        new = update_link(link, write, prec)
        return (new, update_precedence(prec, write), *directional_weightings(new, reads))

    assert torch.autograd.gradcheck(fn, (link, write, prec, reads))


def test_hand_written_link_backward_matches_autograd_of_the_formula() -> None:
    from nma_plugins.memories.dnc_linkage import LinkUpdate

    gen = torch.Generator().manual_seed(11)
    b, n = 2, 6
    link = torch.rand(b, n, n, generator=gen, dtype=torch.float64)
    link.diagonal(dim1=-2, dim2=-1).zero_()
    w = torch.softmax(torch.randn(b, n, generator=gen, dtype=torch.float64), -1) * 0.8
    p = torch.softmax(torch.randn(b, n, generator=gen, dtype=torch.float64), -1) * 0.6
    inputs = [t.clone().requires_grad_() for t in (link, w, p)]
    assert torch.autograd.gradcheck(LinkUpdate.apply, inputs)

    upstream = torch.randn(b, n, n, generator=gen, dtype=torch.float64)
    plain = [t.clone().requires_grad_() for t in (link, w, p)]
    L, wv, pv = plain
    reference = ((1 - wv[:, :, None] - wv[:, None, :]) * L + wv[:, :, None] * pv[:, None, :]) * (
        1 - torch.eye(n, dtype=torch.float64)
    )
    (reference * upstream).sum().backward()
    (LinkUpdate.apply(*inputs) * upstream).sum().backward()
    for mine, theirs in zip(inputs, plain, strict=True):
        assert torch.allclose(mine.grad, theirs.grad, atol=1e-12)
