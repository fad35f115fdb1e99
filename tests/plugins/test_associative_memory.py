"""The associative memory against float64 references written from the papers.

Hopfield mode: Ramsauer et al. (2020) eq. (3) over a ring of stored patterns.
Outer-product mode: M_t = lambda M_{t-1} + v k^T, r = M q (Kohonen 1972).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import detach_state
from nma_plugins.memories import AssociativeMemory, nma_register_memories
from nma_plugins.memories.associative import AssociativeState

B, N, W, R = 2, 4, 3, 2  # batch, slots, width, read heads
TOL = 1e-10


# --- independent references (plain Python floats, straight from the papers) ---------------


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def ref_hopfield_step(interface, memory, written, pointer, iterations):
    """One hopfield step for one batch element.

    interface (W + R (W + 1),), memory (N, W) lists, written (N,) 0/1, pointer: the slot
    written last. Returns reads (R W,), memory, written, pointer, read weights (R, N).
    """
    n = len(memory)
    value = [math.tanh(x) for x in interface[:W]]
    pointer = (pointer + 1) % n
    memory = [list(value) if i == pointer else list(row) for i, row in enumerate(memory)]
    written = [1.0 if i == pointer else w for i, w in enumerate(written)]
    reads, all_weights = [], []
    for r in range(R):
        block = interface[W + r * (W + 1) : W + (r + 1) * (W + 1)]
        xi, beta = list(block[:W]), softplus(block[W])
        weights = [0.0] * n
        for _ in range(iterations):
            # eq. (3): xi_new = X softmax(beta X^T xi), over the written patterns only.
            scores = {
                i: beta * sum(memory[i][j] * xi[j] for j in range(W))
                for i in range(n)
                if written[i]
            }
            top = max(scores.values())
            exps = {i: math.exp(s - top) for i, s in scores.items()}
            total = sum(exps.values())
            weights = [exps.get(i, 0.0) / total for i in range(n)]
            xi = [sum(weights[i] * memory[i][j] for i in range(n)) for j in range(W)]
        reads += xi
        all_weights.append(weights)
    return reads, memory, written, pointer, all_weights


def ref_outer_step(interface, memory, decay, normalize, eps=1e-6):
    """One outer-product step for one batch element.

    interface (N + W + R N,), memory (N, W) lists holding M^T. Returns reads (R W,),
    memory, key (N,), queries (R, N).
    """

    def unit(x):
        if not normalize:
            return list(x)
        norm = math.sqrt(sum(a * a for a in x))
        return [a / max(norm, eps) for a in x]

    key = unit(interface[:N])
    value = [math.tanh(x) for x in interface[N : N + W]]
    queries = [unit(interface[N + W + r * N : N + W + (r + 1) * N]) for r in range(R)]
    # M_t = lambda M_{t-1} + v k^T, entry (j, i) = M^T (i, j).
    memory = [[decay * memory[i][j] + value[j] * key[i] for j in range(W)] for i in range(N)]
    reads = []
    for q in queries:  # r = M q
        reads += [sum(memory[i][j] * q[i] for i in range(N)) for j in range(W)]
    return reads, memory, key, queries


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(**overrides) -> AssociativeMemory:
    config = AssociativeMemory.Config(**{"slots": N, "width": W, "read_heads": R, **overrides})
    return AssociativeMemory(config).double()


# --- sizes, options, initial state ------------------------------------------------------------


def test_sizes_and_options() -> None:
    hop = make()
    assert hop.interface_size == W + R * (W + 1) == 11
    assert hop.read_size == R * W
    outer = make(mode="outer-product")
    assert outer.interface_size == N + W + R * N == 15
    assert outer.read_size == R * W
    assert AssociativeMemory.default_addressing is None
    config = AssociativeMemory.Config()
    assert (config.mode, config.slots, config.width, config.read_heads) == ("hopfield", 64, 20, 1)
    assert (config.iterations, config.decay, config.normalize_keys) == (1, 0.95, True)
    for bad in (
        {"mode": "linear"},
        {"slots": 0},
        {"width": 0},
        {"read_heads": 0},
        {"iterations": 0},
        {"iterations": 17},
        {"decay": -0.1},
        {"decay": 1.5},
        {"eps": 0},
        {"rows": 3},
    ):
        with pytest.raises(ValidationError):
            AssociativeMemory.Config(**bad)
    for field in AssociativeMemory.Config.model_fields.values():
        assert field.description
    with pytest.raises(ValueError, match="addressing"):
        AssociativeMemory(AssociativeMemory.Config(), lambda width, heads: None)


@pytest.mark.parametrize("mode", ["hopfield", "outer-product"])
def test_initial_state(mode: str) -> None:
    memory = make(mode=mode)
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, AssociativeState)
    assert state.memory.shape == (B, N, W) and state.memory.dtype == torch.float32
    assert state.read_weights.shape == (B, R, N)
    assert state.write_weights.shape == (B, 1, N)
    assert state.written.shape == (B, N)
    assert not bool(state.memory.any()) and not bool(state.written.any())
    pointer = [0.0, 0.0, 0.0, 1.0] if mode == "hopfield" else [0.0] * N
    assert state.write_weights[:, 0].tolist() == [pointer] * B


# --- hopfield ----------------------------------------------------------------------------------


@pytest.mark.parametrize("iterations", [1, 3])
def test_hopfield_matches_reference(iterations: int) -> None:
    rng = np.random.default_rng(0)
    memory = make(iterations=iterations)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    refs = [([[0.0] * W for _ in range(N)], [0.0] * N, N - 1) for _ in range(B)]
    for _ in range(6):  # more steps than slots: the ring wraps around
        interface = rng.normal(scale=1.5, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            mem, written, pointer = refs[b]
            want, mem, written, pointer, weights = ref_hopfield_step(
                list(interface[b]), mem, written, pointer, iterations
            )
            refs[b] = (mem, written, pointer)
            np.testing.assert_allclose(reads[b].numpy(), want, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), mem, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.read_weights[b].numpy(), weights, rtol=0, atol=TOL)
            assert state.written[b].tolist() == written
            assert state.write_weights[b, 0].tolist() == [float(i == pointer) for i in range(N)]


def test_hopfield_first_step_reads_the_only_pattern() -> None:
    # After one write, one slot holds a pattern: whatever the query, softmax over a
    # single slot is 1 and the read is that pattern, tanh(value).
    memory = make(iterations=2)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    value = [0.3, -2.0, 0.0]
    interface = t([value + [5.0, -1.0, 2.0, 0.5] + [-3.0, 0.0, 1.0, 2.0]] * B)
    reads, state = memory(interface, state)
    pattern = [math.tanh(x) for x in value]
    np.testing.assert_allclose(reads.numpy(), [pattern * R] * B, rtol=0, atol=TOL)
    assert state.read_weights.tolist() == [[[1.0, 0.0, 0.0, 0.0]] * R] * B
    assert state.written.tolist() == [[1.0, 0.0, 0.0, 0.0]] * B


def test_hopfield_retrieves_a_stored_pattern_from_a_noisy_cue() -> None:
    rng = np.random.default_rng(1)
    slots, width, stored = 8, 32, 7
    memory = make(slots=slots, width=width, read_heads=stored, iterations=1)
    patterns = 0.9 * rng.choice([-1.0, 1.0], size=(stored, width))
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    silent = [0.0] * (stored * (width + 1))
    for p in patterns[:-1]:
        _, state = memory(t([list(np.arctanh(p)) + silent]), state)
    # The last write stores the last pattern; every read head gets a noisy copy of one
    # stored pattern (an eighth of its signs flipped, plus noise) and a large beta.
    heads = []
    for p in patterns:
        cue = p.copy()
        cue[rng.choice(width, size=width // 8, replace=False)] *= -1
        heads += list(cue + rng.normal(scale=0.1, size=width)) + [40.0]  # beta ~ 40
    reads, state = memory(t([list(np.arctanh(patterns[-1])) + heads]), state)
    np.testing.assert_allclose(reads.reshape(stored, width).numpy(), patterns, rtol=0, atol=1e-6)
    assert state.read_weights[0].argmax(-1).tolist() == list(range(stored))


def test_hopfield_weights_are_distributions_on_written_slots() -> None:
    torch.manual_seed(2)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for step in range(1, N + 2):
        _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
        weights = state.read_weights
        assert bool((weights >= 0).all())
        torch.testing.assert_close(weights.sum(-1), torch.ones(B, R, dtype=torch.float64))
        unwritten = state.written == 0
        assert int(unwritten[0].sum()) == max(N - step, 0)
        assert bool((weights.masked_select(unwritten.unsqueeze(1)) == 0).all())


# --- outer product -----------------------------------------------------------------------------


@pytest.mark.parametrize("normalize", [True, False])
def test_outer_product_matches_reference(normalize: bool) -> None:
    rng = np.random.default_rng(3)
    decay = 0.8
    memory = make(mode="outer-product", decay=decay, normalize_keys=normalize)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    refs = [[[0.0] * W for _ in range(N)] for _ in range(B)]
    for _ in range(4):
        interface = rng.normal(scale=1.5, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            want, refs[b], key, queries = ref_outer_step(
                list(interface[b]), refs[b], decay, normalize
            )
            np.testing.assert_allclose(reads[b].numpy(), want, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), refs[b], rtol=0, atol=TOL)
            np.testing.assert_allclose(state.write_weights[b, 0].numpy(), key, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.read_weights[b].numpy(), queries, rtol=0, atol=TOL)


def test_outer_product_decay_by_hand() -> None:
    # lambda = 0.5, key e_1 (after normalising 2 e_1), value tanh -> 0.5 in column 0:
    # M^T row 1 = 0.5 * old + (0.5, 0, 0); the query e_1 reads exactly that row.
    memory = make(mode="outer-product", decay=0.5, read_heads=1)
    old = np.arange(N * W, dtype=float).reshape(N, W)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    state = state._replace(memory=t([old]))
    interface = [0.0, 2.0, 0.0, 0.0] + [math.atanh(0.5), 0.0, 0.0] + [0.0, 3.0, 0.0, 0.0]
    reads, state = memory(t([interface]), state)
    want = 0.5 * old
    want[1, 0] += 0.5
    np.testing.assert_allclose(state.memory[0].numpy(), want, rtol=0, atol=TOL)
    np.testing.assert_allclose(reads[0].numpy(), want[1], rtol=0, atol=TOL)


@pytest.mark.parametrize("normalize", [True, False])
def test_outer_product_orthonormal_keys_return_stored_values_exactly(normalize: bool) -> None:
    rng = np.random.default_rng(4)
    keys = np.linalg.qr(rng.normal(size=(N, N)))[0].T  # rows: an orthonormal basis
    values = rng.uniform(-0.9, 0.9, size=(N, W))
    memory = make(mode="outer-product", decay=1.0, read_heads=N, normalize_keys=normalize)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    scale = rng.uniform(0.5, 3.0, size=N) if normalize else np.ones(N)  # undone by normalising
    for i in range(N):
        interface = list(keys[i] * scale[i]) + list(np.arctanh(values[i])) + list(keys.ravel())
        reads, state = memory(t([interface]), state)
    # The last step's heads query every key, after all N writes.
    np.testing.assert_allclose(reads.reshape(N, W).numpy(), values, rtol=0, atol=1e-12)


# --- both modes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "keys"),
    [
        ("hopfield", {"read_weights", "write_weights", "memory", "usage"}),
        ("outer-product", {"read_weights", "write_weights", "memory"}),
    ],
)
def test_inspect(mode: str, keys: set[str]) -> None:
    memory = make(mode=mode)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert set(seen) == keys
    assert seen["read_weights"].shape == (B, R, N)
    assert seen["write_weights"].shape == (B, 1, N)
    assert seen["memory"].shape == (B, N, W)
    if "usage" in seen:
        assert seen["usage"].shape == (B, N)


@pytest.mark.parametrize(
    "overrides",
    [
        {"iterations": 2},
        {"mode": "outer-product"},
        {"mode": "outer-product", "normalize_keys": False},
    ],
)
def test_gradcheck_full_step(overrides: dict) -> None:
    rng = np.random.default_rng(5)
    memory = make(**overrides)
    base = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(2):  # some written slots, some not
        _, base = memory(t(rng.normal(size=(B, memory.interface_size))), base)
    interface = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    mem = base.memory.clone().requires_grad_()

    def fn(interface: torch.Tensor, mem: torch.Tensor):
        reads, state = memory(interface, base._replace(memory=mem))
        return reads, state.memory, state.read_weights

    assert torch.autograd.gradcheck(fn, (interface, mem))


@pytest.mark.parametrize("mode", ["hopfield", "outer-product"])
def test_long_float32_run_stays_finite(mode: str) -> None:
    torch.manual_seed(6)
    memory = AssociativeMemory(AssociativeMemory.Config(mode=mode))
    state = memory.initial_state(8, torch.device("cpu"), torch.float32)
    for step in range(300):
        reads, state = memory(torch.randn(8, memory.interface_size) * 3, state)
        if step % 50 == 0:
            state = detach_state(state)
    assert bool(torch.isfinite(reads).all()) and bool(torch.isfinite(state.memory).all())


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["associative"] is AssociativeMemory
