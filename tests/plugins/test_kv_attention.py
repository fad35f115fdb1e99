"""Masked multi-head attention with hops (Vaswani et al. 2017 eq. 1; MemN2N section 2.2)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from nma_plugins.memories.kv_attention import masked_attention, multi_hop_attention

B, H, N, D = 2, 3, 5, 4
EPS = 1e-6
TOL = 1e-10


# --- independent reference (plain Python floats) ----------------------------------------


def ref_attention(query, keys, values, presence, eps=EPS):
    """a(i) = m(i) exp(q.K(i)/sqrt(d)) / sum_j m(j) exp(q.K(j)/sqrt(d)) over m > eps."""
    d = len(query)
    present = [i for i in range(len(keys)) if presence[i] > eps]
    if not present:
        return [0.0] * len(values[0]), [0.0] * len(keys)
    scores = {i: sum(q * k for q, k in zip(query, keys[i], strict=True)) / math.sqrt(d)
              for i in present}  # fmt: skip
    top = max(scores[i] + math.log(presence[i]) for i in present)
    raw = {i: presence[i] * math.exp(scores[i] - top) for i in present}
    total = sum(raw.values())
    weights = [raw[i] / total if i in raw else 0.0 for i in range(len(keys))]
    output = [
        sum(weights[i] * values[i][j] for i in range(len(keys))) for j in range(len(values[0]))
    ]
    return output, weights


def ref_hops(query, keys, values, presence, hops):
    """u^{k+1} = u^k + o^k; returns (o^1 + ... + o^K, weights of hop K)."""
    u = list(query)
    total = [0.0] * len(values[0])
    weights = None
    for _ in range(hops):
        out, weights = ref_attention(u, keys, values, presence)
        total = [a + b for a, b in zip(total, out, strict=True)]
        u = [a + b for a, b in zip(u, out, strict=True)]
    return total, weights


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def random_inputs(seed: int, width: int = 3):
    rng = np.random.default_rng(seed)
    queries = rng.normal(scale=1.5, size=(B, H, D))
    keys = rng.normal(size=(B, N, D))
    values = rng.normal(size=(B, N, width))
    presence = rng.uniform(0.05, 1.0, size=(B, N))
    presence[0, 1] = 0.0  # unwritten
    presence[1, [0, 3]] = 0.0
    return queries, keys, values, presence


# --- tests -------------------------------------------------------------------------------


def test_matches_reference() -> None:
    queries, keys, values, presence = random_inputs(0)
    out, weights = masked_attention(t(queries), t(keys), t(values), t(presence), EPS)
    assert out.shape == (B, H, 3) and weights.shape == (B, H, N)
    for b in range(B):
        for h in range(H):
            want_out, want_w = ref_attention(queries[b, h], keys[b], values[b], presence[b])
            np.testing.assert_allclose(out[b, h].numpy(), want_out, rtol=0, atol=TOL)
            np.testing.assert_allclose(weights[b, h].numpy(), want_w, rtol=0, atol=TOL)


def test_binary_presence_is_scaled_dot_product_attention() -> None:
    # With presence in {0, 1}, eq. (1) over the written slots; compare with torch's own
    # scaled_dot_product_attention given the same boolean mask.
    queries, keys, values, _ = random_inputs(1)
    written = np.array([[1, 0, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=float)
    out, _ = masked_attention(t(queries), t(keys), t(values), t(written), EPS)
    mask = t(written).bool().unsqueeze(1).expand(B, H, N)
    want = F.scaled_dot_product_attention(t(queries), t(keys), t(values), attn_mask=mask)
    torch.testing.assert_close(out, want, rtol=0, atol=TOL)


def test_hand_computed() -> None:
    # d = 4, q = (2, 0, 0, 0): scores q.K/2 = (1, 0, 2) for keys (1,0,0,0), (0,1,0,0),
    # (2,0,0,0); slot 2 is absent; slot 1 has presence 0.5. Weights are proportional to
    # e and 0.5: (e, 0.5) / (e + 0.5).
    q = t([[[2.0, 0.0, 0.0, 0.0]]])
    keys = t([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [2.0, 0, 0, 0]]])
    values = t([[[1.0], [3.0], [100.0]]])
    out, weights = masked_attention(q, keys, values, t([[1.0, 0.5, 0.0]]), EPS)
    e = math.e
    np.testing.assert_allclose(weights[0, 0].numpy(), [e / (e + 0.5), 0.5 / (e + 0.5), 0], atol=TOL)
    np.testing.assert_allclose(out[0, 0].numpy(), [(e + 1.5) / (e + 0.5)], rtol=0, atol=TOL)


def test_unscaled_scores_are_plain_dot_products() -> None:
    # MemN2N's eq. (1): the same slots as test_hand_computed, scores q.K = (2, 0, 4)
    # without the 1/sqrt(d) factor; slot 2 is absent, so weights are (e^2, 0.5) / total.
    q = t([[[2.0, 0.0, 0.0, 0.0]]])
    keys = t([[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [2.0, 0, 0, 0]]])
    values = t([[[1.0], [3.0], [100.0]]])
    out, weights = masked_attention(q, keys, values, t([[1.0, 0.5, 0.0]]), EPS, scaled=False)
    e2 = math.e**2
    want = [e2 / (e2 + 0.5), 0.5 / (e2 + 0.5), 0]
    np.testing.assert_allclose(weights[0, 0].numpy(), want, rtol=0, atol=TOL)
    np.testing.assert_allclose(out[0, 0].numpy(), [(e2 + 1.5) / (e2 + 0.5)], rtol=0, atol=TOL)
    linear, _ = masked_attention(q, keys, values, t([[1.0, 0.5, 0.0]]), EPS, True, scaled=False)
    np.testing.assert_allclose(linear[0, 0].numpy(), [2.0 * 1 + 0.5 * 0 * 3], rtol=0, atol=TOL)


def test_absent_slots_get_exactly_zero_weight() -> None:
    queries, keys, values, presence = random_inputs(2)
    keys[0, 1] = 50.0  # a large key on an absent slot changes nothing
    _, weights = masked_attention(t(queries), t(keys), t(values), t(presence), EPS)
    assert bool((weights[0, :, 1] == 0).all()) and bool((weights[1, :, [0, 3]] == 0).all())
    assert bool((weights >= 0).all())
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, dtype=torch.float64))


def test_presence_at_or_below_eps_is_absent() -> None:
    q, keys, values = (
        t([[[1.0, 0, 0, 0]]]),
        t([[[1.0, 0, 0, 0], [0, 0, 0, 0]]]),
        t([[[1.0], [2.0]]]),
    )
    _, weights = masked_attention(q, keys, values, t([[2e-3, 1e-3]]), 1e-3)  # 1e-3 <= eps: absent
    np.testing.assert_array_equal(weights[0, 0].numpy(), [1.0, 0.0])


def test_no_present_slot_reads_zeros_with_finite_gradients() -> None:
    queries, keys, values, _ = random_inputs(3)
    presence = np.zeros((B, N))
    presence[1, 2] = 1e-9  # below eps: still empty
    q, k, v, m = (t(x).requires_grad_() for x in (queries, keys, values, presence))
    out, weights = masked_attention(q, k, v, m, EPS)
    assert bool((out == 0).all()) and bool((weights == 0).all())
    (out.sum() + weights.sum()).backward()
    for x in (q, k, v, m):
        assert bool(torch.isfinite(x.grad).all())


def test_extreme_scores_stay_finite() -> None:
    queries, keys, values, presence = random_inputs(4)
    for dtype in (torch.float64, torch.float32):
        q = (t(queries) * 1e4).to(dtype).requires_grad_()
        out, weights = masked_attention(
            q, t(keys).to(dtype), t(values).to(dtype), t(presence).to(dtype), EPS
        )
        assert bool(torch.isfinite(out).all()) and bool(torch.isfinite(weights).all())
        out.sum().backward()
        assert bool(torch.isfinite(q.grad).all())
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, H, dtype=dtype))


def test_hops_match_reference() -> None:
    queries, keys, values, presence = random_inputs(5, width=D)
    for hops in (1, 2, 4):
        reads, weights = multi_hop_attention(t(queries), t(keys), t(values), t(presence), hops, EPS)
        for b in range(B):
            for h in range(H):
                want, want_w = ref_hops(queries[b, h], keys[b], values[b], presence[b], hops)
                np.testing.assert_allclose(reads[b, h].numpy(), want, rtol=0, atol=TOL)
                np.testing.assert_allclose(weights[b, h].numpy(), want_w, rtol=0, atol=TOL)


def test_one_hop_is_plain_attention() -> None:
    queries, keys, values, presence = random_inputs(6)
    args = (t(queries), t(keys), t(values), t(presence))
    reads, weights = multi_hop_attention(*args, 1, EPS)
    out, want_w = masked_attention(*args, EPS)
    torch.testing.assert_close(reads, out, rtol=0, atol=0)
    torch.testing.assert_close(weights, want_w, rtol=0, atol=0)


def test_gradcheck() -> None:
    queries, keys, values, presence = random_inputs(7, width=D)
    inputs = tuple(t(x).requires_grad_() for x in (queries, keys, values, presence))

    def fn(q, k, v, m):
        return multi_hop_attention(q, k, v, m, 2, EPS)

    assert torch.autograd.gradcheck(fn, inputs)
