"""NTM addressing (eqs. 5-9) against float64 references written from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma_plugins.addressing import ContentAddressing, NTMAddressing, nma_register_addressings
from nma_plugins.addressing.ntm import circular_shift, interpolate, sharpen

B, H, N, W = 2, 2, 5, 3
TOL = 1e-10


# --- independent reference (plain Python floats, straight from eqs. 5-9) -----------------


def ref_content(key: list[float], beta: float, memory: list[list[float]], eps: float):
    """Eqs. 5-6 for one head: key (W,), memory (N, W) -> (N,)."""

    def cosine(u: list[float], v: list[float]) -> float:
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + eps)

    scores = [beta * cosine(key, row) for row in memory]
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    return [e / sum(exps) for e in exps]


def ref_interpolate(content: list[float], prev: list[float], gate: float) -> list[float]:
    """Eq. 7."""
    return [gate * c + (1 - gate) * p for c, p in zip(content, prev, strict=True)]


def ref_shift(weights: list[float], shift: list[float]) -> list[float]:
    """Eq. 8, w~(i) = sum_j w(j) s(i - j) with s indexed by offsets -R..R, modulo N."""
    n, r = len(weights), (len(shift) - 1) // 2
    out = [0.0] * n
    for i in range(n):
        for j in range(n):
            for k, s in enumerate(shift):  # entry k is the offset k - R
                if (i - j - (k - r)) % n == 0:
                    out[i] += weights[j] * s
    return out


def ref_sharpen(weights: list[float], gamma: float) -> list[float]:
    """Eq. 9."""
    powered = [w**gamma for w in weights]
    return [p / sum(powered) for p in powered]


def ref_ntm(key, beta, gate, shift, gamma, memory, prev, eps):
    content = ref_content(key, beta, memory, eps)
    return ref_sharpen(ref_shift(ref_interpolate(content, prev, gate), shift), gamma)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(shift_range: int = 1, eps: float = 1e-6) -> NTMAddressing:
    return NTMAddressing(NTMAddressing.Config(shift_range=shift_range, eps=eps), W, H).double()


def random_params(seed: int, shift_range: int = 1):
    """Constrained parameters drawn directly in their ranges, plus memory and prev."""
    rng = np.random.default_rng(seed)
    return {
        "key": rng.normal(size=(B, H, W)),
        "strength": rng.uniform(0.0, 5.0, size=(B, H, 1)),
        "gate": rng.uniform(0.0, 1.0, size=(B, H, 1)),
        "shift": rng.dirichlet(np.ones(2 * shift_range + 1), size=(B, H)),
        "sharpen": rng.uniform(1.0, 3.0, size=(B, H, 1)),
        "memory": rng.normal(size=(B, N, W)),
        "prev": rng.dirichlet(np.ones(N), size=(B, H)),
    }


def one_hot(index: int, size: int) -> list[float]:
    return [1.0 if i == index else 0.0 for i in range(size)]


# --- the stages one by one -----------------------------------------------------------------


def test_params_layout() -> None:
    assert list(make().params.items()) == [
        ("key", W),
        ("strength", 1),
        ("gate", 1),
        ("shift", 3),
        ("sharpen", 1),
    ]
    assert make(shift_range=2).params["shift"] == 5
    assert make(shift_range=2).params_size == W + 1 + 1 + 5 + 1


def test_interpolation_matches_reference() -> None:
    p = random_params(0)
    content = np.random.default_rng(1).dirichlet(np.ones(N), size=(B, H))
    got = interpolate(t(content), t(p["prev"]), t(p["gate"]))
    want = [
        [ref_interpolate(list(content[b, h]), list(p["prev"][b, h]), p["gate"][b, h, 0])
         for h in range(H)]
        for b in range(B)
    ]  # fmt: skip
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


def test_interpolation_gate_extremes() -> None:
    p = random_params(2)
    content = t(np.random.default_rng(3).dirichlet(np.ones(N), size=(B, H)))
    prev = t(p["prev"])
    torch.testing.assert_close(interpolate(content, prev, torch.ones(B, H, 1)), content)
    torch.testing.assert_close(interpolate(content, prev, torch.zeros(B, H, 1)), prev)


@pytest.mark.parametrize("shift_range", [1, 2, 3])
def test_shift_matches_reference(shift_range: int) -> None:
    # shift_range 3 has 7 offsets on 5 slots: offsets wrap around more than once.
    p = random_params(4, shift_range)
    got = circular_shift(t(p["prev"]), t(p["shift"]))
    want = [
        [ref_shift(list(p["prev"][b, h]), list(p["shift"][b, h])) for h in range(H)]
        for b in range(B)
    ]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


@pytest.mark.parametrize(
    ("shift_range", "start", "offset", "end"),
    [
        (1, 1, +1, 2),  # no wrap: +1 moves focus to the next slot
        (1, 3, -1, 2),  # no wrap: -1 moves focus to the previous slot
        (1, 2, 0, 2),
        (1, N - 1, +1, 0),  # wrap: the last slot shifted by +1 lands on slot 0
        (1, 0, -1, N - 1),  # wrap: slot 0 shifted by -1 lands on the last slot
        (2, N - 1, +2, 1),
        (2, N - 2, +2, 0),
        (2, N - 1, +1, 0),
        (2, 1, -2, N - 1),
        (2, 0, -2, N - 2),
        (2, 0, +2, 2),
    ],
)
def test_shift_one_hot(shift_range: int, start: int, offset: int, end: int) -> None:
    weights = t([[one_hot(start, N)]])
    shift = t([[one_hot(offset + shift_range, 2 * shift_range + 1)]])
    got = circular_shift(weights, shift)
    np.testing.assert_allclose(got.numpy(), [[one_hot(end, N)]], rtol=0, atol=0)


def test_shift_spreads_mass_and_conserves_it() -> None:
    # A one-hot at slot 0 with s = (0.2, 0.5, 0.3) over offsets (-1, 0, +1) ends as
    # 0.5 at slot 0, 0.3 at slot 1 and 0.2 at the last slot.
    got = circular_shift(t([[one_hot(0, N)]]), t([[[0.2, 0.5, 0.3]]]))
    np.testing.assert_allclose(got.numpy(), [[[0.5, 0.3, 0.0, 0.0, 0.2]]], rtol=0, atol=TOL)


def test_sharpen_matches_reference() -> None:
    p = random_params(5)
    got = sharpen(t(p["prev"]), t(p["sharpen"]))
    want = [
        [ref_sharpen(list(p["prev"][b, h]), p["sharpen"][b, h, 0]) for h in range(H)]
        for b in range(B)
    ]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)
    # gamma = 1 changes nothing; gamma > 1 concentrates the mass on the largest slot.
    torch.testing.assert_close(sharpen(t(p["prev"]), torch.ones(B, H, 1)), t(p["prev"]))
    top = torch.tensor(p["prev"]).argmax(-1, keepdim=True)
    assert bool((got.gather(-1, top) >= t(p["prev"]).gather(-1, top)).all())


def test_sharpen_with_zeros_has_finite_gradients() -> None:
    weights = t([[[0.0, 0.6, 0.0, 0.4, 0.0], [1.0, 0.0, 0.0, 0.0, 0.0]]]).requires_grad_()
    gamma = t([[[2.5], [1.0]]]).requires_grad_()
    got = sharpen(weights, gamma)
    (got * torch.arange(N, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(weights.grad).all()) and bool(torch.isfinite(gamma.grad).all())
    want = [[ref_sharpen([0.0, 0.6, 0.0, 0.4, 0.0], 2.5), one_hot(0, N)]]
    np.testing.assert_allclose(got.detach().numpy(), want, rtol=0, atol=TOL)


def test_sharpen_gradient_through_an_empty_slot() -> None:
    # With gamma = 1 sharpening is w / sum(w): weight added to an empty slot still
    # changes the output, so its gradient must survive the 0^gamma guard.
    weights = t([[[0.0, 0.6, 0.0, 0.4, 0.0]]]).requires_grad_()
    assert torch.autograd.gradcheck(lambda w: sharpen(w, torch.ones(1, 1, 1)), (weights,))


def test_sharpen_with_large_gamma_does_not_underflow() -> None:
    # 0.5 ** 2000 underflows float64 to 0: without care the row would be 0 / 0.
    got = sharpen(t([[[0.5, 0.3, 0.2, 0.0, 0.0]]]), t([[[2000.0]]]))
    np.testing.assert_allclose(got.numpy(), [[one_hot(0, N)]], rtol=0, atol=TOL)


# --- the whole scheme -------------------------------------------------------------------


@pytest.mark.parametrize("shift_range", [1, 2])
def test_chain_matches_reference(shift_range: int) -> None:
    p = random_params(6, shift_range)
    module = make(shift_range)
    names = ["key", "strength", "gate", "shift", "sharpen"]
    got = module({name: t(p[name]) for name in names}, t(p["memory"]), t(p["prev"]))
    assert got.shape == (B, H, N)
    want = [
        [
            ref_ntm(
                list(p["key"][b, h]),
                p["strength"][b, h, 0],
                p["gate"][b, h, 0],
                list(p["shift"][b, h]),
                p["sharpen"][b, h, 0],
                [list(row) for row in p["memory"][b]],
                list(p["prev"][b, h]),
                1e-6,
            )
            for h in range(H)
        ]
        for b in range(B)
    ]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


def test_content_only_when_gate_open_and_no_shift() -> None:
    # g = 1, s = delta at offset 0, gamma = 1: the NTM scheme reduces to content addressing.
    p = random_params(7)
    params = {
        "key": t(p["key"]),
        "strength": t(p["strength"]),
        "gate": torch.ones(B, H, 1),
        "shift": t(np.tile([0.0, 1.0, 0.0], (B, H, 1))),
        "sharpen": torch.ones(B, H, 1),
    }
    got = make()(params, t(p["memory"]), t(p["prev"]))
    content = ContentAddressing(ContentAddressing.Config(), W, H)
    params = {"key": params["key"], "strength": params["strength"]}
    want = content(params, t(p["memory"]), t(p["prev"]))
    torch.testing.assert_close(got, want, rtol=0, atol=TOL)


def test_split_feeds_each_parameter_to_its_stage() -> None:
    # Through the raw interface: a closed gate keeps the previous one-hot focus, a shift
    # of +1 moves it to the next slot, and gamma ~ 1 leaves it. A reordering of the
    # parameters, or an inverted shift, would land elsewhere.
    module = make(shift_range=2)
    rng = np.random.default_rng(8)
    raw = np.zeros((B, H, module.params_size))
    raw[..., :W] = rng.normal(size=(B, H, W))  # key
    raw[..., W] = 3.0  # strength
    raw[..., W + 1] = -60.0  # gate -> ~0
    raw[..., W + 2 : W + 7] = [-60.0, -60.0, -60.0, 60.0, -60.0]  # shift -> offset +1
    raw[..., W + 7] = -60.0  # sharpen -> ~1
    prev = np.array([[one_hot(1, N), one_hot(N - 1, N)], [one_hot(3, N), one_hot(0, N)]])
    got = module(module.split(t(raw)), t(rng.normal(size=(B, N, W))), t(prev))
    want = [[one_hot(2, N), one_hot(0, N)], [one_hot(4, N), one_hot(1, N)]]
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=TOL)


def test_constrain_matches_reference_and_ranges() -> None:
    module = make(shift_range=2)
    rng = np.random.default_rng(9)
    raw = rng.uniform(-30.0, 30.0, size=(B, H, module.params_size))
    params = module.split(t(raw))
    assert {name: tuple(v.shape) for name, v in params.items()} == {
        "key": (B, H, W),
        "strength": (B, H, 1),
        "gate": (B, H, 1),
        "shift": (B, H, 5),
        "sharpen": (B, H, 1),
    }
    np.testing.assert_array_equal(params["key"].numpy(), raw[..., :W])
    for b in range(B):
        for h in range(H):
            row = raw[b, h]
            assert params["strength"][b, h, 0].item() == pytest.approx(softplus(row[W]), 1e-12)
            assert params["gate"][b, h, 0].item() == pytest.approx(sigmoid(row[W + 1]), 1e-12)
            exps = [math.exp(x) for x in row[W + 2 : W + 7]]
            want = [e / sum(exps) for e in exps]
            np.testing.assert_allclose(params["shift"][b, h].numpy(), want, rtol=1e-12)
            gamma = 1 + softplus(row[W + 7])
            assert params["sharpen"][b, h, 0].item() == pytest.approx(gamma, 1e-12)
    assert bool((params["strength"] >= 0).all())
    assert bool((params["gate"] > 0).all()) and bool((params["gate"] < 1).all())
    assert bool((params["shift"] >= 0).all())
    torch.testing.assert_close(params["shift"].sum(-1), torch.ones(B, H, dtype=torch.float64))
    assert bool((params["sharpen"] >= 1).all())


@pytest.mark.parametrize("seed", range(5))
def test_rows_are_distributions(seed: int) -> None:
    module = make(shift_range=1 + seed % 2)
    rng = np.random.default_rng(seed)
    raw = rng.normal(scale=5.0, size=(B, H, module.params_size))
    prev = rng.dirichlet(np.ones(N), size=(B, H))
    got = module(module.split(t(raw)), t(rng.normal(size=(B, N, W))), t(prev))
    assert bool(torch.isfinite(got).all()) and bool((got >= 0).all())
    torch.testing.assert_close(got.sum(-1), torch.ones(B, H, dtype=torch.float64))


@pytest.mark.parametrize("shift_range", [1, 2])
def test_gradcheck(shift_range: int) -> None:
    module = make(shift_range)
    rng = np.random.default_rng(10)
    raw = t(rng.normal(size=(B, H, module.params_size))).requires_grad_()
    memory = t(rng.normal(size=(B, N, W))).requires_grad_()
    prev = t(rng.dirichlet(np.ones(N), size=(B, H))).requires_grad_()

    def fn(raw: torch.Tensor, memory: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        return module(module.split(raw), memory, prev)

    assert torch.autograd.gradcheck(fn, (raw, memory, prev))


def test_one_hot_previous_weights_keep_gradients_finite() -> None:
    # The first step starts from one-hot weightings; with a nearly closed gate some
    # slots carry (almost) no weight into the sharpening.
    module = make()
    rng = np.random.default_rng(11)
    raw = t(rng.normal(size=(B, H, module.params_size)))
    raw[..., W + 1] = -800.0  # sigmoid underflows to exactly 0
    raw.requires_grad_()
    prev = t(np.tile(one_hot(0, N), (B, H, 1)))
    got = module(module.split(raw), t(rng.normal(size=(B, N, W))), prev)
    (got * torch.arange(N, dtype=torch.float64)).sum().backward()
    assert bool(torch.isfinite(got).all()) and bool(torch.isfinite(raw.grad).all())


def test_config_limits() -> None:
    config = NTMAddressing.Config()
    assert (config.shift_range, config.eps) == (1, 1e-6)
    with pytest.raises(ValidationError):
        NTMAddressing.Config(shift_range=0)
    with pytest.raises(ValidationError):
        NTMAddressing.Config(eps=-1.0)
    for field in NTMAddressing.Config.model_fields.values():
        assert field.description


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_addressings(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["content"] is ContentAddressing
    assert registered["ntm"] is NTMAddressing
