"""Content addressing (NTM eqs. 5-6) against float64 references written from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma_plugins.addressing import ContentAddressing
from nma_plugins.addressing.content import cosine_similarity

B, H, N, W = 2, 2, 5, 3
TOL = 1e-10


# --- independent reference (plain Python floats, straight from eqs. 5-6) -----------------


def ref_cosine(u: list[float], v: list[float], eps: float) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    norm_u = math.sqrt(sum(a * a for a in u))
    norm_v = math.sqrt(sum(b * b for b in v))
    return dot / (norm_u * norm_v + eps)


def ref_softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def ref_content(keys: np.ndarray, strengths: np.ndarray, memory: np.ndarray, eps: float):
    """keys (B,H,W), strengths (B,H,1), memory (B,N,W) -> (B,H,N) as nested lists."""
    out = []
    for b in range(keys.shape[0]):
        rows = []
        for h in range(keys.shape[1]):
            beta = float(strengths[b, h, 0])
            scores = [
                beta * ref_cosine(list(keys[b, h]), list(memory[b, i]), eps)
                for i in range(memory.shape[1])
            ]
            rows.append(ref_softmax(scores))
        out.append(rows)
    return np.array(out)


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(eps: float = 1e-6, width: int = W, heads: int = H) -> ContentAddressing:
    return ContentAddressing(ContentAddressing.Config(eps=eps), width, heads).double()


def random_inputs(seed: int = 0):
    rng = np.random.default_rng(seed)
    keys = rng.normal(size=(B, H, W))
    strengths = rng.uniform(0.5, 5.0, size=(B, H, 1))
    memory = rng.normal(size=(B, N, W))
    prev = rng.dirichlet(np.ones(N), size=(B, H))
    return keys, strengths, memory, prev


# --- tests -------------------------------------------------------------------------------


def test_params_layout() -> None:
    module = make()
    assert module.params == {"key": W, "strength": 1}
    assert list(module.params) == ["key", "strength"]
    assert module.params_size == W + 1


def test_cosine_similarity_matches_reference() -> None:
    keys, _, memory, _ = random_inputs()
    got = cosine_similarity(t(keys), t(memory), 1e-6)
    assert got.shape == (B, H, N)
    want = [
        [[ref_cosine(list(keys[b, h]), list(memory[b, i]), 1e-6) for i in range(N)]
         for h in range(H)]
        for b in range(B)
    ]  # fmt: skip
    np.testing.assert_allclose(got.numpy(), np.array(want), rtol=0, atol=TOL)


def test_weights_match_reference() -> None:
    keys, strengths, memory, prev = random_inputs(1)
    module = make()
    got = module({"key": t(keys), "strength": t(strengths)}, t(memory), t(prev))
    assert got.shape == (B, H, N)
    want = ref_content(keys, strengths, memory, 1e-6)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


def test_hand_computed_cases() -> None:
    # One head, two batch elements, N = 3 slots of width 2, eps negligible.
    # Batch 0: key (1, 1) against rows (1, 1), (-1, -1), (1, -1): cosines 1, -1, 0.
    #   With beta = ln 2 the weights are proportional to 2, 1/2, 1, i.e. (4, 1, 2) / 7.
    # Batch 1: key (3, 4) against rows (3, 4), (4, -3), (-3, -4): cosines 1, 0, -1 (the
    #   norms are 5, so the normalisation matters). With beta = ln 3 the weights are
    #   proportional to 3, 1, 1/3, i.e. (9, 3, 1) / 13.
    module = make(eps=1e-12, width=2, heads=1)
    keys = t([[[1.0, 1.0]], [[3.0, 4.0]]])
    strengths = t([[[math.log(2.0)]], [[math.log(3.0)]]])
    memory = t([[[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]], [[3.0, 4.0], [4.0, -3.0], [-3.0, -4.0]]])
    got = module({"key": keys, "strength": strengths}, memory, torch.zeros(2, 1, 3))
    want = [[[4 / 7, 1 / 7, 2 / 7]], [[9 / 13, 3 / 13, 1 / 13]]]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


def test_zero_strength_is_uniform() -> None:
    keys, _, memory, prev = random_inputs(2)
    module = make()
    got = module({"key": t(keys), "strength": torch.zeros(B, H, 1)}, t(memory), t(prev))
    np.testing.assert_allclose(got.numpy(), np.full((B, H, N), 1 / N), rtol=0, atol=TOL)


def test_split_and_constrain() -> None:
    rng = np.random.default_rng(3)
    raw = rng.uniform(-30.0, 30.0, size=(B, H, W + 1))
    module = make()
    params = module.split(t(raw))
    assert set(params) == {"key", "strength"}
    np.testing.assert_array_equal(params["key"].numpy(), raw[..., :W])
    softplus = np.vectorize(lambda x: math.log1p(math.exp(x)))(raw[..., W:])
    np.testing.assert_allclose(params["strength"].numpy(), softplus, rtol=1e-12, atol=0)
    assert bool((params["strength"] >= 0).all())


def test_prev_weights_are_ignored() -> None:
    keys, strengths, memory, prev = random_inputs(4)
    module = make()
    params = {"key": t(keys), "strength": t(strengths)}
    a = module(params, t(memory), t(prev))
    b = module(params, t(memory), torch.rand(B, H, N, dtype=torch.float64))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 50.0, 500.0])
def test_rows_are_distributions(beta: float) -> None:
    keys, _, memory, prev = random_inputs(5)
    module = make()
    got = module({"key": t(keys), "strength": torch.full((B, H, 1), beta)}, t(memory), t(prev))
    assert bool((got >= 0).all())
    torch.testing.assert_close(got.sum(-1), torch.ones(B, H, dtype=torch.float64))


def test_zero_key_and_zero_row_have_finite_gradients() -> None:
    keys, strengths, memory, prev = random_inputs(6)
    keys[0, 0] = 0.0
    memory[1, 2] = 0.0
    key_t = t(keys).requires_grad_()
    memory_t = t(memory).requires_grad_()
    got = make()({"key": key_t, "strength": t(strengths)}, memory_t, t(prev))
    (got * torch.arange(N, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(got).all())
    assert bool(torch.isfinite(key_t.grad).all()) and bool(torch.isfinite(memory_t.grad).all())
    # A zero key sees every row at similarity 0: a uniform weighting.
    np.testing.assert_allclose(got[0, 0].detach().numpy(), np.full(N, 1 / N), atol=TOL)


def test_gradcheck() -> None:
    keys, _, memory, prev = random_inputs(7)
    rng = np.random.default_rng(8)
    raw = t(rng.normal(size=(B, H, W + 1))).requires_grad_()
    memory_t = t(memory).requires_grad_()
    module = make()

    def fn(raw: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        return module(module.split(raw), memory, t(prev))

    assert torch.autograd.gradcheck(fn, (raw, memory_t))


def test_float32_runs() -> None:
    keys, strengths, memory, prev = random_inputs(9)
    module = ContentAddressing(ContentAddressing.Config(), W, H)
    params = {"key": t(keys).float(), "strength": t(strengths).float()}
    got = module(params, t(memory).float(), t(prev).float())
    assert got.dtype == torch.float32
    want = ref_content(keys, strengths, memory, 1e-6)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-5)


def test_config_limits() -> None:
    assert ContentAddressing.Config().eps == 1e-6
    with pytest.raises(ValidationError):
        ContentAddressing.Config(eps=0.0)
    with pytest.raises(ValidationError):
        ContentAddressing.Config(epsilon=1e-3)
    for field in ContentAddressing.Config.model_fields.values():
        assert field.description
