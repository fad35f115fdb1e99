"""Sparse temporal linkage of the SDNC against dense float64 references written as loops."""

from __future__ import annotations

import numpy as np
import torch

from nma_plugins.memories.sdnc_linkage import (
    SparseLinks,
    sparse_directional_weightings,
    sparse_update_link,
    sparse_update_precedence,
)
from nma_plugins.memories.sdnc_sparse import coalesce, densify

B, N, K, R = 2, 6, 2, 2
TOL = 1e-12


# --- dense references (plain Python loops over nested lists) ------------------------------


def ref_link(link, write, prec):
    """The DNC's L_t[i][j] = (1 - w[i] - w[j]) L[i][j] + w[i] p[j], zero diagonal."""
    n = len(write)
    return [
        [
            0.0 if i == j else (1 - write[i] - write[j]) * link[i][j] + write[i] * prec[j]
            for j in range(n)
        ]
        for i in range(n)
    ]


def ref_link_t(link_t, write, prec):
    """The same update written on L^T: T[j][i] = (1 - w[i] - w[j]) T[j][i] + w[i] p[j]."""
    n = len(write)
    return [
        [
            0.0 if i == j else (1 - write[i] - write[j]) * link_t[j][i] + write[i] * prec[j]
            for i in range(n)
        ]
        for j in range(n)
    ]


def ref_precedence(prec, write):
    total = sum(write)
    return [(1 - total) * p + w for p, w in zip(prec, write, strict=True)]


def top(row, k):
    """Keep the k largest entries of a list (the others become 0)."""
    keep = sorted(range(len(row)), key=lambda i: -row[i])[:k]
    return [row[i] if i in keep else 0.0 for i in range(len(row))]


def dense_rows(indices: torch.Tensor, values: torch.Tensor) -> list:
    """(N, E) sparse rows -> N x N nested lists, summing duplicates."""
    n = indices.shape[0]
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j, v in zip(indices[i].tolist(), values[i].tolist(), strict=True):
            out[i][j] += v
    return out


def dense_vector(indices: torch.Tensor, values: torch.Tensor, n: int) -> list:
    out = [0.0] * n
    for j, v in zip(indices.tolist(), values.tolist(), strict=True):
        out[j] += v
    return out


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def empty_links(entries: int, batch: int = B) -> SparseLinks:
    own = torch.arange(N).view(1, N, 1).expand(batch, N, entries).clone()
    zeros = torch.zeros(batch, N, entries, dtype=torch.float64)
    return SparseLinks(own, zeros, own.clone(), zeros.clone())


def random_write(rng: np.random.Generator, batch: int = B) -> tuple[torch.Tensor, torch.Tensor]:
    """A K-sparse write weighting with distinct slots, summing to at most 1."""
    indices = torch.stack([torch.tensor(rng.permutation(N)[:K]) for _ in range(batch)])
    values = t(rng.dirichlet(np.ones(K), size=batch) * rng.uniform(0.3, 1.0, size=(batch, 1)))
    return indices, values


def run_steps(entries: int, steps: int, seed: int):
    """Run the sparse updates and, alongside, the dense reference with truncation."""
    rng = np.random.default_rng(seed)
    links = empty_links(entries)
    p_idx = torch.arange(entries).expand(B, entries).clone()
    p_val = torch.zeros(B, entries, dtype=torch.float64)
    ref = [
        {"L": [[0.0] * N for _ in range(N)], "T": [[0.0] * N for _ in range(N)], "p": [0.0] * N}
        for _ in range(B)
    ]
    for _ in range(steps):
        w_idx, w_val = random_write(rng)
        links = sparse_update_link(links, w_idx, w_val, p_idx, p_val)
        p_idx, p_val = sparse_update_precedence(p_idx, p_val, w_idx, w_val, N)
        for b in range(B):
            w = dense_vector(w_idx[b], w_val[b], N)
            r = ref[b]
            r["L"] = [top(row, entries) for row in ref_link(r["L"], w, r["p"])]
            r["T"] = [top(row, entries) for row in ref_link_t(r["T"], w, r["p"])]
            r["p"] = top(ref_precedence(r["p"], w), entries)
        yield links, (p_idx, p_val), ref


# --- tests --------------------------------------------------------------------------------


def test_untruncated_link_matches_the_dense_dnc() -> None:
    # K_L = N: no row can exceed K_L entries, so L and L^T are the DNC's exact matrices.
    for links, (p_idx, p_val), ref in run_steps(entries=N, steps=6, seed=0):
        for b in range(B):
            got_l = dense_rows(links.link_indices[b], links.link_values[b])
            got_t = dense_rows(links.link_t_indices[b], links.link_t_values[b])
            np.testing.assert_allclose(got_l, ref[b]["L"], atol=TOL)
            np.testing.assert_allclose(np.array(got_t).T, ref[b]["L"], atol=TOL)
            np.testing.assert_allclose(dense_vector(p_idx[b], p_val[b], N), ref[b]["p"], atol=TOL)
    assert np.abs(np.array(ref[0]["L"])).sum() > 0.1


def test_truncated_link_keeps_the_largest_entries() -> None:
    # K_L = 2 < the non-zeros a row would reach: each stored row is the top K_L of the
    # dense update of the previous stored rows.
    entries = 2
    for links, (p_idx, p_val), ref in run_steps(entries=entries, steps=8, seed=1):
        for b in range(B):
            got_l = dense_rows(links.link_indices[b], links.link_values[b])
            got_t = dense_rows(links.link_t_indices[b], links.link_t_values[b])
            np.testing.assert_allclose(got_l, ref[b]["L"], atol=TOL)
            np.testing.assert_allclose(got_t, ref[b]["T"], atol=TOL)
            np.testing.assert_allclose(dense_vector(p_idx[b], p_val[b], N), ref[b]["p"], atol=TOL)
    # The truncation did happen: a dense DNC would have more than K_L entries per row.
    assert max(sum(v > 0 for v in row) for row in ref[0]["L"]) == entries


def test_sparsity_invariants() -> None:
    entries = 3
    for links, (p_idx, p_val), _ in run_steps(entries=entries, steps=10, seed=2):
        assert links.link_indices.shape == (B, N, entries)
        for table_i, table_v in (
            (links.link_indices, links.link_values),
            (links.link_t_indices, links.link_t_values),
        ):
            rows = torch.arange(N).view(1, N, 1)
            assert bool(((table_v != 0) & (table_i == rows)).sum() == 0)  # zero diagonal
            assert bool((table_v >= 0).all()) and bool((table_v <= 1 + TOL).all())
            assert int((table_v != 0).sum(-1).max()) <= entries
        for b in range(B):
            assert len(set(p_idx[b].tolist())) == entries  # distinct slots
        assert bool((p_val.sum(-1) <= 1 + TOL).all())


def test_precedence_by_hand() -> None:
    # p = 0.5 on slots 0 and 1; a full write on slot 3 replaces it entirely.
    p_idx, p_val = sparse_update_precedence(
        torch.tensor([[0, 1]]), t([[0.5, 0.5]]), torch.tensor([[3, 4]]), t([[1.0, 0.0]]), 5
    )
    np.testing.assert_allclose(densify(p_idx, p_val, 5).numpy(), [[0, 0, 0, 1.0, 0]], atol=TOL)


def test_directional_weightings_match_dense_loops() -> None:
    rng = np.random.default_rng(3)
    entries = 3
    # Random sparse rows (independent L and L^T tables, to test each gather on its own).
    tables = []
    for _ in range(2):
        idx = torch.tensor(rng.integers(0, N, size=(B, N, entries)))
        val = t(rng.uniform(size=(B, N, entries)) / entries)
        tables += [idx, val]
    links = SparseLinks(*tables)
    r_idx = torch.tensor(rng.integers(0, N, size=(B, R, K)))
    r_val = t(rng.dirichlet(np.ones(K), size=(B, R)))
    (f_idx, f_val), (b_idx, b_val) = sparse_directional_weightings(links, r_idx, r_val)
    assert f_idx.shape == f_val.shape == b_idx.shape == (B, R, K * entries)
    for b in range(B):
        link = dense_rows(links.link_indices[b], links.link_values[b])
        link_t = dense_rows(links.link_t_indices[b], links.link_t_values[b])
        for h in range(R):
            w = dense_vector(r_idx[b, h], r_val[b, h], N)
            forward = [sum(link_t[j][i] * w[j] for j in range(N)) for i in range(N)]  # L w
            backward = [sum(link[i][j] * w[i] for i in range(N)) for j in range(N)]  # L^T w
            np.testing.assert_allclose(dense_vector(f_idx[b, h], f_val[b, h], N), forward, atol=TOL)
            np.testing.assert_allclose(
                dense_vector(b_idx[b, h], b_val[b, h], N), backward, atol=TOL
            )


def test_forward_backward_by_hand() -> None:
    # Write slot 0 fully, then slot 4: L[4, 0] = 1. Forward from slot 0 is slot 4,
    # backward from slot 4 is slot 0.
    links = empty_links(2, batch=1)
    p_idx, p_val = torch.tensor([[0, 1]]), torch.zeros(1, 2, dtype=torch.float64)
    for slot in (0, 4):
        w_idx, w_val = torch.tensor([[slot, (slot + 1) % N]]), t([[1.0, 0.0]])
        links = sparse_update_link(links, w_idx, w_val, p_idx, p_val)
        p_idx, p_val = sparse_update_precedence(p_idx, p_val, w_idx, w_val, N)
    reads = torch.tensor([[[0, 1], [4, 1]]]), t([[[1.0, 0.0], [1.0, 0.0]]])
    (f_idx, f_val), (b_idx, b_val) = sparse_directional_weightings(links, *reads)
    np.testing.assert_allclose(densify(f_idx, f_val, N)[0, 0].numpy(), np.eye(N)[4], atol=TOL)
    np.testing.assert_allclose(densify(b_idx, b_val, N)[0, 1].numpy(), np.eye(N)[0], atol=TOL)
    np.testing.assert_allclose(densify(f_idx, f_val, N)[0, 1].numpy(), np.zeros(N), atol=TOL)


def random_links(rng: np.random.Generator, entries: int) -> SparseLinks:
    """Rows of distinct off-diagonal slots with positive values (no ties at zero, where
    the truncation has a kink that finite differences would straddle)."""
    tables = []
    for _ in range(2):
        idx = np.zeros((B, N, entries), dtype=np.int64)
        for b in range(B):
            for i in range(N):
                idx[b, i] = rng.permutation([j for j in range(N) if j != i])[:entries]
        tables += [torch.tensor(idx), t(rng.uniform(0.05, 1.0, size=(B, N, entries)) / entries)]
    return SparseLinks(*tables)


def test_gradcheck_link_update_and_reads() -> None:
    rng = np.random.default_rng(4)
    entries = 3
    links = random_links(rng, entries)
    p_idx = torch.stack([torch.tensor(rng.permutation(N)[:entries]) for _ in range(B)])
    p_val = t(rng.dirichlet(np.ones(entries), size=B) * 0.9)
    w_idx, w_val = random_write(rng)
    r_idx = torch.stack([torch.tensor(rng.permutation(N)[:K]) for _ in range(B * R)]).view(B, R, K)
    r_val = t(rng.dirichlet(np.ones(K), size=(B, R)))
    inputs = tuple(
        x.clone().requires_grad_()
        for x in (links.link_values, links.link_t_values, w_val, p_val, r_val)
    )

    def fn(lv, tv, wv, pv, rv):
        new = sparse_update_link(
            SparseLinks(links.link_indices, lv, links.link_t_indices, tv), w_idx, wv, p_idx, pv
        )
        (_, f), (_, b) = sparse_directional_weightings(new, r_idx, rv)
        prec = sparse_update_precedence(p_idx, pv, w_idx, wv, N)[1]
        return new.link_values, new.link_t_values, prec, f, b

    assert torch.autograd.gradcheck(fn, inputs)


def test_coalesce_is_what_merges_rows() -> None:
    # Guard against a silent change of the primitive the link update relies on.
    idx, val = coalesce(torch.tensor([[1, 1, 2]]), t([[0.25, 0.25, 0.125]]), 1, 4)
    assert idx.tolist() == [[1]] and val.tolist() == [[0.5]]
