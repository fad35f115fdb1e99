"""Titans' neural memory (Behrouz et al. 2024, eqs. 10-15) against float64 references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from nma import detach_state
from nma_plugins.memories import NeuralMemory, nma_register_memories
from nma_plugins.memories.neural import ACTIVATIONS, NeuralState, mlp_gradient

B, W, HIDDEN = 2, 3, 4  # batch, key/value width, hidden units
TOL = 1e-10
EPS = 1e-6


# --- independent reference (float64, one batch element at a time, from the paper) ----------

REF_ACTIVATIONS = {
    "silu": F.silu,
    "gelu": lambda x: 0.5 * x * (1 + torch.erf(x / math.sqrt(2))),
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def ref_mlp(layers: list[torch.Tensor], x: torch.Tensor, activation: str) -> torch.Tensor:
    """M(x) for one element: layers (out_j, in_j), x (in_1,)."""
    h = x
    for layer in layers[:-1]:
        h = REF_ACTIVATIONS[activation](layer @ h)
    return layers[-1] @ h


def unflatten(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    out, start = [], 0
    for rows, cols in shapes:
        out.append(flat[start : start + rows * cols].reshape(rows, cols))
        start += rows * cols
    return out


def ref_step(interface, weights, momentum, shapes, activation, normalize, clip):
    """One step for one element: interface (3W + 3,), weights/momentum (P,) numpy float64.

    Returns (read (W,), weights (P,), momentum (P,), loss, grad_norm).
    """
    k, v, q = interface[:W], interface[W : 2 * W], interface[2 * W : 3 * W]
    eta, theta, alpha = (1 / (1 + math.exp(-x)) for x in interface[3 * W :])
    if normalize:
        k = k / max(np.linalg.norm(k), EPS)
        q = q / max(np.linalg.norm(q), EPS)
    layers = [torch.tensor(x, requires_grad=True) for x in unflatten(weights, shapes)]
    y = ref_mlp(layers, torch.tensor(k), activation)
    loss = ((y - torch.tensor(v)) ** 2).sum()  # eq. (12)
    grad = np.concatenate([g.numpy().ravel() for g in torch.autograd.grad(loss, layers)])
    norm = float(np.linalg.norm(grad))
    if clip > 0:
        grad = grad * min(1.0, clip / (norm + EPS))
    momentum = eta * momentum - theta * grad  # eq. (10)
    weights = (1 - alpha) * weights + momentum  # eq. (13)
    new_layers = [torch.tensor(x) for x in unflatten(weights, shapes)]
    read = ref_mlp(new_layers, torch.tensor(q), activation).numpy()  # eq. (15)
    return read, weights, momentum, float(loss.detach()), norm


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(**overrides) -> NeuralMemory:
    config = NeuralMemory.Config(**{"width": W, "hidden": HIDDEN, **overrides})
    return NeuralMemory(config).double()


def random_state(memory: NeuralMemory, rng: np.random.Generator, batch: int = B) -> NeuralState:
    state = memory.initial_state(batch, torch.device("cpu"), torch.float64)
    return state._replace(
        weights=t(rng.normal(scale=0.7, size=(batch, memory.params))),
        momentum=t(rng.normal(scale=0.1, size=(batch, memory.params))),
    )


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes_and_options() -> None:
    memory = make(depth=3)
    assert memory.shapes == [(HIDDEN, W), (HIDDEN, HIDDEN), (W, HIDDEN)]
    assert memory.params == HIDDEN * W + HIDDEN * HIDDEN + W * HIDDEN == 40
    assert memory.interface_size == 3 * W + 3
    assert memory.read_size == W
    assert make(depth=1).shapes == [(W, W)]
    assert NeuralMemory.default_addressing is None
    config = NeuralMemory.Config()
    assert (config.width, config.hidden, config.depth, config.activation) == (20, 32, 2, "silu")
    assert (config.normalize_keys, config.max_grad_norm) == (True, 10.0)
    for bad in (
        {"width": 0},
        {"hidden": 0},
        {"depth": 0},
        {"depth": 9},
        {"activation": "softmax"},
        {"max_grad_norm": -1.0},
        {"eps": 0},
        {"slots": 4},
    ):
        with pytest.raises(ValidationError):
            NeuralMemory.Config(**bad)
    for field in NeuralMemory.Config.model_fields.values():
        assert field.description
    with pytest.raises(ValueError, match="addressing"):
        NeuralMemory(NeuralMemory.Config(), lambda width, heads: None)


def test_initial_state() -> None:
    torch.manual_seed(0)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, NeuralState)
    assert state.weights.shape == (B, memory.params) and state.weights.dtype == torch.float32
    assert state.momentum.shape == (B, memory.params) and not bool(state.momentum.any())
    assert state.loss.shape == state.grad_norm.shape == (B,)
    assert state.gates.shape == (B, 3)
    for b in range(B):
        torch.testing.assert_close(state.weights[b], memory.initial_weights.float())
    first = memory.initial_weights.detach()[: HIDDEN * W]
    assert float(first.abs().max()) <= 1 / math.sqrt(W) and float(first.std()) > 0


def test_initial_weights_are_learned() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    interface = torch.randn(B, memory.interface_size, dtype=torch.float64)
    for _ in range(3):
        reads, state = memory(interface, state)
    reads.sum().backward()
    assert float(memory.initial_weights.grad.abs().sum()) > 0


# --- the analytic gradient ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_derivatives(name: str) -> None:
    fn, derivative = ACTIVATIONS[name]
    x = torch.linspace(-4, 4, 41, dtype=torch.float64).add(0.013).requires_grad_()
    (want,) = torch.autograd.grad(fn(x).sum(), x)
    torch.testing.assert_close(derivative(x), want, rtol=0, atol=TOL)
    torch.testing.assert_close(fn(x), REF_ACTIVATIONS[name](x), rtol=0, atol=TOL)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_analytic_gradient_matches_autograd(depth: int, name: str) -> None:
    rng = np.random.default_rng(depth)
    memory = make(depth=depth, activation=name)
    weights = t(rng.normal(size=(B, memory.params))).requires_grad_()
    keys, values = t(rng.normal(size=(B, W))), t(rng.normal(size=(B, W)))
    grads, loss = mlp_gradient(memory.layers(weights), keys, values, *ACTIVATIONS[name])
    for b in range(B):
        layers = [x[b] for x in memory.layers(weights)]
        want_loss = ((ref_mlp(layers, keys[b], name) - values[b]) ** 2).sum()
        torch.testing.assert_close(loss[b], want_loss, rtol=0, atol=TOL)
        want = torch.autograd.grad(want_loss, weights)[0][b]
        got = torch.cat([g[b].flatten() for g in grads])
        torch.testing.assert_close(got, want, rtol=0, atol=TOL)


# --- the update equations ---------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"depth": 1},
        {"depth": 3, "activation": "tanh", "normalize_keys": False, "max_grad_norm": 0.5},
        {"activation": "gelu", "max_grad_norm": 0.0},
    ],
)
def test_steps_match_reference(overrides: dict) -> None:
    rng = np.random.default_rng(1)
    memory = make(**overrides)
    config = memory.config
    state = random_state(memory, rng)
    refs = [(state.weights[b].numpy().copy(), state.momentum[b].numpy().copy()) for b in range(B)]
    for _ in range(4):
        interface = rng.normal(scale=1.5, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            read, weights, momentum, loss, norm = ref_step(
                interface[b],
                *refs[b],
                memory.shapes,
                config.activation,
                config.normalize_keys,
                config.max_grad_norm,
            )
            refs[b] = (weights, momentum)
            np.testing.assert_allclose(reads[b].numpy(), read, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.weights[b].numpy(), weights, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.momentum[b].numpy(), momentum, rtol=0, atol=TOL)
            assert abs(float(state.loss[b]) - loss) < TOL
            assert abs(float(state.grad_norm[b]) - norm) < TOL
            gates = [1 / (1 + math.exp(-x)) for x in interface[b, 3 * W :]]
            np.testing.assert_allclose(state.gates[b].numpy(), gates, rtol=0, atol=TOL)


def test_linear_memory_by_hand() -> None:
    # depth 1, M_0 = 0, S_0 = 0, k = e_1 (5 e_1 normalised), v = (1, 2, 3), gates 0.5:
    # grad = 2 (0 - v) k^T, S_1 = -0.5 grad = v e_1^T, M_1 = 0.5 * 0 + S_1 = v e_1^T,
    # so the read with q = e_1 is v, and the loss before the write is |v|^2 = 14.
    memory = make(depth=1)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    state = state._replace(weights=torch.zeros(1, memory.params, dtype=torch.float64))
    interface = t([[0.0, 5.0, 0.0, 1.0, 2.0, 3.0, 0.0, 2.0, 0.0, 0.0, 0.0, 0.0]])
    reads, state = memory(interface, state)
    np.testing.assert_allclose(reads[0].numpy(), [1.0, 2.0, 3.0], rtol=0, atol=TOL)
    want = np.zeros((W, W))
    want[:, 1] = [1.0, 2.0, 3.0]
    np.testing.assert_allclose(state.weights[0].numpy().reshape(W, W), want, rtol=0, atol=TOL)
    np.testing.assert_allclose(state.momentum[0].numpy().reshape(W, W), want, rtol=0, atol=TOL)
    assert abs(float(state.loss[0]) - 14.0) < TOL
    assert abs(float(state.grad_norm[0]) - 2 * math.sqrt(14)) < TOL


def test_clipping_bounds_the_step() -> None:
    # With theta = 0.5, eta = 0.5 and zero momentum, |S_1| = 0.5 min(|grad|, c).
    memory = make(max_grad_norm=0.25)
    rng = np.random.default_rng(2)
    state = random_state(memory, rng)._replace(
        momentum=torch.zeros(B, memory.params, dtype=torch.float64)
    )
    interface = t(rng.normal(scale=3.0, size=(B, memory.interface_size)))
    interface[:, 3 * W :] = 0.0
    _, state = memory(interface, state)
    assert bool((state.grad_norm > 0.25).all())
    norms = torch.linalg.vector_norm(state.momentum, dim=-1)
    torch.testing.assert_close(norms, torch.full((B,), 0.125, dtype=torch.float64))


@pytest.mark.parametrize("depth", [1, 2])
def test_repeated_writes_make_the_read_approach_the_value(depth: int) -> None:
    rng = np.random.default_rng(3)
    memory = make(depth=depth, hidden=8).requires_grad_(False)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    key, value = rng.normal(size=W), rng.uniform(-1, 1, size=W)
    # eta ~ 0.05, theta ~ 0.27, alpha ~ 2e-9; the query is the key, so reads are M_t(k).
    interface = t([list(key) + list(value) + list(key) + [-3.0, -1.0, -20.0]])
    errors = []
    for _ in range(150):
        reads, state = memory(interface, state)
        errors.append(float(torch.linalg.vector_norm(reads[0] - t(value))))
    assert errors[-1] < 1e-4 * errors[0] and errors[-1] < 1e-4
    assert errors[-1] <= min(errors[:10])


# --- the whole step -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{}, {"activation": "tanh", "max_grad_norm": 0.3}, {"depth": 1, "normalize_keys": False}],
)
def test_gradcheck_full_step(overrides: dict) -> None:
    rng = np.random.default_rng(4)
    memory = make(**overrides)
    base = random_state(memory, rng, batch=1)
    interface = t(rng.normal(size=(1, memory.interface_size))).requires_grad_()
    weights = base.weights.clone().requires_grad_()
    momentum = base.momentum.clone().requires_grad_()

    def fn(interface: torch.Tensor, weights: torch.Tensor, momentum: torch.Tensor):
        reads, state = memory(interface, base._replace(weights=weights, momentum=momentum))
        return reads, state.weights, state.momentum, state.loss

    assert torch.autograd.gradcheck(fn, (interface, weights, momentum))


def test_inspect() -> None:
    memory = make(depth=3).requires_grad_(False)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert {name: tuple(x.shape) for name, x in seen.items()} == {
        "loss": (B,),
        "grad_norm": (B,),
        "surprise": (B,),
        "weight_norms": (B, 3),
        "gates": (B, 3),
    }
    for b in range(B):
        layers = memory.layers(state.weights)
        norms = [float(torch.linalg.vector_norm(x[b])) for x in layers]
        np.testing.assert_allclose(seen["weight_norms"][b].numpy(), norms, rtol=0, atol=TOL)
        surprise = float(torch.linalg.vector_norm(state.momentum[b]))
        assert abs(float(seen["surprise"][b]) - surprise) < TOL


def test_long_float32_run_stays_finite() -> None:
    torch.manual_seed(5)
    memory = NeuralMemory(NeuralMemory.Config()).requires_grad_(False)
    state = memory.initial_state(8, torch.device("cpu"), torch.float32)
    for step in range(300):
        reads, state = memory(torch.randn(8, memory.interface_size) * 3, state)
        if step % 50 == 0:
            state = detach_state(state)
    assert bool(torch.isfinite(reads).all())
    assert all(bool(torch.isfinite(x).all()) for x in state)


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["neural"] is NeuralMemory
