"""Top-K content addressing (SAM section 3.1) against float64 references from the formula."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma_plugins.addressing import ContentAddressing, TopKAddressing, nma_register_addressings
from nma_plugins.addressing.topk import sparse_content_weights

B, H, N, W, K = 2, 3, 7, 4, 3
TOL = 1e-10


# --- independent reference (plain Python floats) ------------------------------------------


def ref_cosine(u, v, eps: float) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + eps)


def ref_topk(key, beta: float, memory, k: int, eps: float) -> list[float]:
    """Cosines, the k largest, softmax of beta * cosine over them, zeros elsewhere."""
    sims = [ref_cosine(key, row, eps) for row in memory]
    kept = sorted(range(len(sims)), key=lambda i: -sims[i])[:k]
    top = max(beta * sims[i] for i in kept)
    exps = {i: math.exp(beta * sims[i] - top) for i in kept}
    total = sum(exps.values())
    return [exps[i] / total if i in exps else 0.0 for i in range(len(sims))]


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(k: int = K, eps: float = 1e-6, width: int = W, heads: int = H) -> TopKAddressing:
    return TopKAddressing(TopKAddressing.Config(k=k, eps=eps), width, heads).double()


def random_inputs(seed: int):
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(B, H, W))
    strengths = rng.uniform(0.5, 5.0, size=(B, H, 1))
    memory = rng.normal(size=(B, N, W))
    return keys, strengths, memory


# --- tests ---------------------------------------------------------------------------------


def test_params_and_config() -> None:
    module = make()
    assert module.params == {"key": W, "strength": 1}
    config = TopKAddressing.Config()
    assert (config.k, config.eps) == (4, 1e-6)
    with pytest.raises(ValidationError):
        TopKAddressing.Config(k=0)
    with pytest.raises(ValidationError):
        TopKAddressing.Config(eps=0.0)
    with pytest.raises(ValidationError):
        TopKAddressing.Config(top=3)
    for field in TopKAddressing.Config.model_fields.values():
        assert field.description


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_addressings(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["topk"] is TopKAddressing
    assert {"content", "ntm"} <= set(registered)


@pytest.mark.parametrize("k", [1, 3, N, N + 2])
def test_matches_reference(k: int) -> None:
    keys, strengths, memory = random_inputs(k)
    got = make(k=k)({"key": t(keys), "strength": t(strengths)}, t(memory), torch.zeros(B, H, N))
    assert got.shape == (B, H, N)
    want = [
        [ref_topk(keys[b, h], strengths[b, h, 0], memory[b], k, 1e-6) for h in range(H)]
        for b in range(B)
    ]
    np.testing.assert_allclose(got.numpy(), np.array(want), rtol=0, atol=TOL)


def test_exactly_k_nonzeros_summing_to_one() -> None:
    keys, strengths, memory = random_inputs(10)
    got = make()({"key": t(keys), "strength": t(strengths)}, t(memory), torch.zeros(B, H, N))
    assert bool(((got > 0).sum(-1) == K).all())
    assert bool((got >= 0).all())
    torch.testing.assert_close(got.sum(-1), torch.ones(B, H, dtype=torch.float64))


def test_equals_content_renormalised_over_its_top_k() -> None:
    keys, strengths, memory = random_inputs(11)
    params = {"key": t(keys), "strength": t(strengths)}
    content = ContentAddressing(ContentAddressing.Config(), W, H).double()
    dense = content(params, t(memory), torch.zeros(B, H, N))
    top, index = dense.topk(K, dim=-1)
    want = torch.zeros_like(dense).scatter(-1, index, top / top.sum(-1, keepdim=True))
    got = make()(params, t(memory), torch.zeros(B, H, N))
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)
    # With K >= N nothing is cut: plain content addressing.
    torch.testing.assert_close(make(k=N)(params, t(memory), dense), dense, rtol=0, atol=TOL)


def test_hand_computed_case() -> None:
    # Key (1, 0) against rows (1, 0), (0, 1), (-1, 0), (1, sqrt 3): cosines 1, 0, -1, 1/2.
    # K = 2 keeps slots 0 and 3; with beta = ln 4 their weights are proportional to
    # 4^1 = 4 and 4^(1/2) = 2, i.e. 2/3 and 1/3.
    module = make(k=2, eps=1e-14, width=2, heads=1)
    memory = t([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, math.sqrt(3.0)]]])
    params = {"key": t([[[1.0, 0.0]]]), "strength": t([[[math.log(4.0)]]])}
    got = module(params, memory, torch.zeros(1, 1, 4))
    np.testing.assert_allclose(got.numpy(), [[[2 / 3, 0.0, 0.0, 1 / 3]]], rtol=0, atol=TOL)


def test_sparse_weights_match_reference() -> None:
    rng = np.random.default_rng(12)
    keys = rng.normal(size=(B, H, W))
    strengths = rng.uniform(0.0, 4.0, size=(B, H, 1))
    rows = rng.normal(size=(B, H, K, W))
    got = sparse_content_weights(t(keys), t(strengths), t(rows), 1e-6)
    for b in range(B):
        for h in range(H):
            want = ref_topk(keys[b, h], strengths[b, h, 0], rows[b, h], K, 1e-6)
            # With k = the number of rows, ref_topk keeps them all, in their order.
            np.testing.assert_allclose(got[b, h].numpy(), want, rtol=0, atol=TOL)


def test_prev_weights_are_ignored() -> None:
    keys, strengths, memory = random_inputs(13)
    params = {"key": t(keys), "strength": t(strengths)}
    module = make()
    a = module(params, t(memory), torch.zeros(B, H, N, dtype=torch.float64))
    b = module(params, t(memory), torch.rand(B, H, N, dtype=torch.float64))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_gradcheck() -> None:
    keys, _, memory = random_inputs(14)
    raw = t(np.random.default_rng(15).normal(size=(B, H, W + 1))).requires_grad_()
    memory_t = t(memory).requires_grad_()
    module = make()

    def fn(raw: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return module(module.split(raw), memory, torch.zeros(B, H, N, dtype=torch.float64))

    assert torch.autograd.gradcheck(fn, (raw, memory_t))


def test_float32() -> None:
    keys, strengths, memory = random_inputs(16)
    module = TopKAddressing(TopKAddressing.Config(k=K), W, H)
    params = {"key": t(keys).float(), "strength": t(strengths).float()}
    got = module(params, t(memory).float(), torch.zeros(B, H, N))
    assert got.dtype == torch.float32
    want = [
        [ref_topk(keys[b, h], strengths[b, h, 0], memory[b], K, 1e-6) for h in range(H)]
        for b in range(B)
    ]
    np.testing.assert_allclose(got.numpy(), np.array(want), rtol=0, atol=1e-5)
