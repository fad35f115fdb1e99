"""The DNC memory (Graves et al. 2016, Methods) against float64 references from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import Addressing, Options
from nma_plugins.addressing import ContentAddressing, NTMAddressing
from nma_plugins.memories import nma_register_memories
from nma_plugins.memories.dnc import DNCMemory, DNCState

B, N, W, R = 2, 5, 3, 2  # batch, slots, width, read heads
TOL = 1e-10
CONTENT_EPS = 1e-6


# --- independent reference (plain Python floats, straight from the Methods) --------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def oneplus(x: float) -> float:
    return 1 + math.log1p(math.exp(x))


def softmax(xs):
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]


def ref_content(memory, key, beta):
    """C(M, k, beta)[i] = softmax_i(beta cos(k, M[i])), cos with eps as in the plugin."""

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        norms = math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v))
        return dot / (norms + CONTENT_EPS)

    return softmax([beta * cosine(key, row) for row in memory])


def ref_parse(xi):
    """Split one interface vector by the documented layout (content addressing)."""
    pos = 0

    def take(n):
        nonlocal pos
        out = list(xi[pos : pos + n])
        pos += n
        return out

    read_keys, read_betas = [], []
    for _ in range(R):
        read_keys.append(take(W))
        read_betas.append(oneplus(take(1)[0]))
    write_key = take(W)
    write_beta = oneplus(take(1)[0])
    erase = [sigmoid(x) for x in take(W)]
    values = take(W)
    free = [sigmoid(x) for x in take(R)]
    g_a = sigmoid(take(1)[0])
    g_w = sigmoid(take(1)[0])
    modes = [softmax(take(3)) for _ in range(R)]
    assert pos == len(xi)
    return read_keys, read_betas, write_key, write_beta, erase, values, free, g_a, g_w, modes


def ref_step(xi, state):
    """One DNC step for one batch element. state: dict of nested lists. Returns reads, state."""
    mem, usage, link, prec = state["memory"], state["usage"], state["link"], state["precedence"]
    rw, ww = state["read_weights"], state["write_weights"]
    rk, rb, wk, wb, erase, values, free, g_a, g_w, modes = ref_parse(xi)
    n = len(mem)
    # Usage and retention.
    psi = [math.prod(1 - free[h] * rw[h][i] for h in range(R)) for i in range(n)]
    u = [(usage[i] + ww[i] - usage[i] * ww[i]) * psi[i] for i in range(n)]
    # Allocation: free list by ascending usage, ties by index.
    alloc = [0.0] * n
    product = 1.0
    for slot in sorted(range(n), key=lambda i: (u[i], i)):
        alloc[slot] = (1 - u[slot]) * product
        product *= u[slot]
    # Write weighting and memory.
    cw = ref_content(mem, wk, wb)
    w = [g_w * (g_a * alloc[i] + (1 - g_a) * cw[i]) for i in range(n)]
    new_mem = [
        [mem[i][j] * (1 - w[i] * erase[j]) + w[i] * values[j] for j in range(W)] for i in range(n)
    ]
    # Links and precedence.
    new_link = [
        [0.0 if i == j else (1 - w[i] - w[j]) * link[i][j] + w[i] * prec[j] for j in range(n)]
        for i in range(n)
    ]
    new_prec = [(1 - sum(w)) * prec[i] + w[i] for i in range(n)]
    # Reads.
    new_rw, reads = [], []
    for h in range(R):
        f = [sum(new_link[i][j] * rw[h][j] for j in range(n)) for i in range(n)]
        b = [sum(new_link[i][j] * rw[h][i] for i in range(n)) for j in range(n)]
        c = ref_content(new_mem, rk[h], rb[h])
        weights = [modes[h][0] * b[i] + modes[h][1] * c[i] + modes[h][2] * f[i] for i in range(n)]
        new_rw.append(weights)
        reads += [sum(weights[i] * new_mem[i][j] for i in range(n)) for j in range(W)]
    new_state = {
        "memory": new_mem,
        "usage": u,
        "link": new_link,
        "precedence": new_prec,
        "read_weights": new_rw,
        "write_weights": w,
    }
    return reads, new_state


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def content_factory(width: int, heads: int) -> Addressing:
    return ContentAddressing(ContentAddressing.Config(eps=CONTENT_EPS), width, heads)


def make(factory=content_factory, **overrides) -> DNCMemory:
    config = DNCMemory.Config(**{"slots": N, "width": W, "read_heads": R, **overrides})
    return DNCMemory(config, factory).double()


def random_state(rng: np.random.Generator, batch: int = B, slots: int = N) -> DNCState:
    link = rng.uniform(size=(batch, slots, slots)) / slots
    for b in range(batch):
        np.fill_diagonal(link[b], 0.0)
    return DNCState(
        memory=t(rng.normal(size=(batch, slots, W))),
        usage=t(rng.uniform(0.05, 0.95, size=(batch, slots))),
        link=t(link),
        precedence=t(rng.dirichlet(np.ones(slots), size=batch) * 0.9),
        read_weights=t(rng.dirichlet(np.ones(slots), size=(batch, R))),
        write_weights=t(rng.dirichlet(np.ones(slots), size=(batch, 1)) * 0.8),
    )


def state_as_lists(state: DNCState, b: int) -> dict:
    return {
        "memory": state.memory[b].tolist(),
        "usage": state.usage[b].tolist(),
        "link": state.link[b].tolist(),
        "precedence": state.precedence[b].tolist(),
        "read_weights": state.read_weights[b].tolist(),
        "write_weights": state.write_weights[b, 0].tolist(),
    }


def assert_state_close(state: DNCState, ref: dict, b: int) -> None:
    for name in ("memory", "usage", "link", "precedence", "read_weights"):
        np.testing.assert_allclose(
            getattr(state, name)[b].numpy(), ref[name], rtol=0, atol=TOL, err_msg=name
        )
    np.testing.assert_allclose(state.write_weights[b, 0].numpy(), ref["write_weights"], atol=TOL)


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes() -> None:
    memory = make()
    assert memory.interface_size == W * R + 3 * W + 5 * R + 3 == 28
    assert memory.read_size == R * W
    assert memory.read_addressing.heads == R and memory.write_addressing.heads == 1
    assert DNCMemory.default_addressing == "content"
    ntm = make(lambda w, h: NTMAddressing(NTMAddressing.Config(), w, h))
    p = W + 1 + 1 + 3 + 1
    assert ntm.interface_size == R * p + p + 2 * W + 4 * R + 2


def test_needs_an_addressing() -> None:
    with pytest.raises(ValueError, match="addressing"):
        DNCMemory(DNCMemory.Config(), None)


def test_config_limits() -> None:
    config = DNCMemory.Config()
    assert (config.slots, config.width, config.read_heads, config.write_heads) == (128, 20, 2, 1)
    for name in ("slots", "width", "read_heads", "write_heads"):
        with pytest.raises(ValidationError):
            DNCMemory.Config(**{name: 0})
    for name in DNCMemory.Config.model_fields:
        assert DNCMemory.Config.model_fields[name].description
    with pytest.raises(ValidationError):
        DNCMemory.Config(write_heads=2)
    with pytest.raises(ValidationError):
        DNCMemory.Config(eps=0.0)
    with pytest.raises(ValidationError):
        DNCMemory.Config(rows=3)


def test_initial_state() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, DNCState)
    shapes = {
        "memory": (B, N, W),
        "usage": (B, N),
        "link": (B, N, N),
        "precedence": (B, N),
        "read_weights": (B, R, N),
        "write_weights": (B, 1, N),
    }
    for name, shape in shapes.items():
        value = getattr(state, name)
        assert value.shape == shape and value.dtype == torch.float32, name
        assert bool((value == 0).all()), name


# --- the interface layout and every update equation in one step ---------------------------


def test_split_interface_layout() -> None:
    rng = np.random.default_rng(0)
    memory = make()
    xi = rng.normal(size=(B, memory.interface_size))
    parts = memory.split_interface(t(xi))
    for b in range(B):
        rk, rb, wk, wb, erase, values, free, g_a, g_w, modes = ref_parse(list(xi[b]))
        np.testing.assert_allclose(parts.read_params["key"][b].numpy(), rk, atol=TOL)
        np.testing.assert_allclose(parts.read_params["strength"][b, :, 0].numpy(), rb, atol=TOL)
        np.testing.assert_allclose(parts.write_params["key"][b, 0].numpy(), wk, atol=TOL)
        np.testing.assert_allclose(float(parts.write_params["strength"][b, 0, 0]), wb, atol=TOL)
        np.testing.assert_allclose(parts.erase[b].numpy(), erase, atol=TOL)
        np.testing.assert_allclose(parts.write_vector[b].numpy(), values, atol=TOL)
        np.testing.assert_allclose(parts.free_gates[b].numpy(), free, atol=TOL)
        np.testing.assert_allclose(float(parts.allocation_gate[b, 0]), g_a, atol=TOL)
        np.testing.assert_allclose(float(parts.write_gate[b, 0]), g_w, atol=TOL)
        np.testing.assert_allclose(parts.read_modes[b].numpy(), modes, atol=TOL)
    assert bool((parts.read_params["strength"] >= 1).all())


def test_full_steps_match_reference() -> None:
    rng = np.random.default_rng(1)
    memory = make()
    state = random_state(rng)
    refs = [state_as_lists(state, b) for b in range(B)]
    for _ in range(3):
        xi = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(xi), state)
        for b in range(B):
            want_reads, refs[b] = ref_step(list(xi[b]), refs[b])
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            assert_state_close(state, refs[b], b)


def test_steps_from_the_initial_state_match_reference() -> None:
    rng = np.random.default_rng(2)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    refs = [state_as_lists(state, b) for b in range(B)]
    for _ in range(4):
        xi = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(xi), state)
        for b in range(B):
            want_reads, refs[b] = ref_step(list(xi[b]), refs[b])
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            assert_state_close(state, refs[b], b)


def test_read_modes_by_hand() -> None:
    # Slot 1 then slot 3 were written (L[3, 1] = 1); a head that read slot 1 and chooses
    # the forward mode reads slot 3; one that read slot 3 and chooses backward reads slot 1.
    memory = make(read_heads=2)
    rows = np.arange(N * W, dtype=float).reshape(N, W) / 10
    link = np.zeros((B, N, N))
    link[:, 3, 1] = 1.0
    read_weights = np.zeros((B, 2, N))
    read_weights[:, 0, 1] = 1.0
    read_weights[:, 1, 3] = 1.0
    state = DNCState(
        memory=t(np.broadcast_to(rows, (B, N, W)).copy()),
        usage=t(np.full((B, N), 0.5)),
        link=t(link),
        precedence=torch.zeros(B, N, dtype=torch.float64),
        read_weights=t(read_weights),
        write_weights=torch.zeros(B, 1, N, dtype=torch.float64),
    )
    xi = np.zeros((B, memory.interface_size))
    start = memory.interface_size - 3 * 2 - 2  # write gate = sigmoid(-60) ~ 0: no write
    xi[:, start + 1] = -60.0
    modes = xi[:, memory.interface_size - 6 :].reshape(B, 2, 3)
    modes[:, 0] = [-60.0, -60.0, 60.0]  # head 0: forward
    modes[:, 1] = [60.0, -60.0, -60.0]  # head 1: backward
    xi[:, memory.interface_size - 6 :] = modes.reshape(B, 6)
    reads, new = memory(t(xi), state)
    for b in range(B):
        np.testing.assert_allclose(reads[b, :W].numpy(), rows[3], atol=1e-9)
        np.testing.assert_allclose(reads[b, W:].numpy(), rows[1], atol=1e-9)
        np.testing.assert_allclose(new.read_weights[b, 0].numpy(), np.eye(N)[3], atol=1e-9)


def test_weights_stay_in_range_float32() -> None:
    torch.manual_seed(3)
    memory = make(slots=8).float()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    for _ in range(30):
        reads, state = memory(torch.randn(B, memory.interface_size) * 3, state)
        assert bool(torch.isfinite(reads).all())
        for value in state:
            assert bool(torch.isfinite(value).all())
        assert bool((state.usage >= 0).all()) and bool((state.usage <= 1 + 1e-6).all())
        for weights in (state.read_weights, state.write_weights, state.precedence):
            assert bool((weights >= -1e-7).all()) and bool((weights.sum(-1) <= 1 + 1e-5).all())
        assert bool((torch.diagonal(state.link, dim1=-2, dim2=-1) == 0).all())


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert seen["read_weights"].shape == (B, R, N)
    assert seen["write_weights"].shape == (B, 1, N)
    assert seen["usage"].shape == (B, N)
    assert seen["memory"].shape == (B, N, W)
    assert seen["link"].shape == (B, N, N)
    assert seen["precedence"].shape == (B, N)
    torch.testing.assert_close(seen["usage"], state.usage, rtol=0, atol=0)


def test_gradcheck_full_step() -> None:
    rng = np.random.default_rng(4)
    memory = make()
    base = random_state(rng)
    xi = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    tensors = tuple(value.clone().requires_grad_() for value in base)

    def fn(xi, *state):
        reads, new = memory(xi, DNCState(*state))
        return (reads, *new)

    assert torch.autograd.gradcheck(fn, (xi, *tensors))


# --- garbage-collection contract ------------------------------------------------------------


def test_slot_usage_counts_the_last_write() -> None:
    memory = make()
    state = random_state(np.random.default_rng(5))
    usage = memory.slot_usage(state)
    for b in range(B):
        for i in range(N):
            u, w = float(state.usage[b, i]), float(state.write_weights[b, 0, i])
            assert abs(float(usage[b, i]) - (u + w - u * w)) < 1e-12


def test_reorder_slots_leaves_the_next_reads_unchanged() -> None:
    rng = np.random.default_rng(6)
    n = 7
    memory = make(slots=n)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(5):  # a state reached by the memory itself, with distinct usages
        _, state = memory(t(rng.normal(scale=2.0, size=(B, memory.interface_size))), state)
    order = torch.stack(
        [torch.randperm(n, generator=torch.Generator().manual_seed(b)) for b in range(B)]
    )
    moved = memory.reorder_slots(state, order)
    for b in range(B):
        for i in range(n):
            j = int(order[b, i])
            torch.testing.assert_close(moved.memory[b, i], state.memory[b, j], rtol=0, atol=0)
            assert float(moved.usage[b, i]) == float(state.usage[b, j])
            assert float(moved.precedence[b, i]) == float(state.precedence[b, j])
            torch.testing.assert_close(
                moved.read_weights[b, :, i], state.read_weights[b, :, j], rtol=0, atol=0
            )
            assert float(moved.write_weights[b, 0, i]) == float(state.write_weights[b, 0, j])
            for k in range(n):
                assert float(moved.link[b, i, k]) == float(state.link[b, j, int(order[b, k])])
    xi = t(rng.normal(scale=2.0, size=(B, memory.interface_size)))
    reads, after = memory(xi, state)
    moved_reads, moved_after = memory(xi, moved)
    torch.testing.assert_close(moved_reads, reads, rtol=0, atol=1e-12)
    reordered_after = memory.reorder_slots(after, order)
    for name, value in zip(DNCState._fields, moved_after, strict=True):
        torch.testing.assert_close(value, getattr(reordered_after, name), rtol=0, atol=1e-12)


def test_clear_slots() -> None:
    rng = np.random.default_rng(7)
    memory = make()
    state = random_state(rng)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, 1] = True
    mask[1, 3] = mask[1, 4] = True
    cleared = memory.clear_slots(state, mask)
    # the heads' weightings are where they looked, not stored data: kept
    assert torch.equal(cleared.read_weights, state.read_weights)
    assert torch.equal(cleared.write_weights, state.write_weights)
    for b in range(B):
        for i in range(N):
            if mask[b, i]:
                assert bool((cleared.memory[b, i] == 0).all())
                assert float(cleared.usage[b, i]) == 0.0
                assert float(cleared.precedence[b, i]) == 0.0
                assert bool((cleared.link[b, i] == 0).all()) and bool(
                    (cleared.link[b, :, i] == 0).all()
                )
            else:
                torch.testing.assert_close(cleared.memory[b, i], state.memory[b, i], rtol=0, atol=0)
                assert float(cleared.usage[b, i]) == float(state.usage[b, i])
                for k in range(N):
                    if not mask[b, k]:
                        assert float(cleared.link[b, i, k]) == float(state.link[b, i, k])
    # A cleared slot is first in the free list: with both gates open and nothing to
    # retain, the whole write goes to the first cleared slot.
    xi = torch.zeros(B, memory.interface_size, dtype=torch.float64)
    gates = memory.interface_size - 3 * R - 2
    xi[:, gates : gates + 2] = 60.0
    cleared = cleared._replace(write_weights=torch.zeros_like(cleared.write_weights))
    _, after = memory(xi, cleared)
    np.testing.assert_allclose(after.write_weights[0, 0].numpy(), np.eye(N)[1], atol=1e-9)
    np.testing.assert_allclose(after.write_weights[1, 0].numpy(), np.eye(N)[3], atol=1e-9)


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["dnc"] is DNCMemory


class RecordingAddressing(Addressing):
    """Returns uniform weightings and records the memory and previous weightings."""

    def __init__(self, config: Options, width: int, heads: int) -> None:
        super().__init__(config, width, heads)
        self.params = {"key": width, "strength": 1}
        self.seen: list = []

    def forward(self, params, memory, prev_weights):
        self.seen.append((params, memory, prev_weights))
        b, n = memory.shape[0], memory.shape[1]
        return torch.full((b, self.heads, n), 1 / n, dtype=memory.dtype)


def test_addressing_sees_the_right_memory_and_previous_weights() -> None:
    memory = make(lambda w, h: RecordingAddressing(Options(), w, h))
    state = random_state(np.random.default_rng(8))
    xi = t(np.random.default_rng(9).normal(size=(B, memory.interface_size)))
    _, new = memory(xi, state)
    ((w_params, w_memory, w_prev),) = memory.write_addressing.seen
    ((r_params, r_memory, r_prev),) = memory.read_addressing.seen
    torch.testing.assert_close(w_memory, state.memory, rtol=0, atol=0)  # M_{t-1}
    torch.testing.assert_close(r_memory, new.memory, rtol=0, atol=0)  # M_t
    torch.testing.assert_close(w_prev, state.write_weights, rtol=0, atol=0)
    torch.testing.assert_close(r_prev, state.read_weights, rtol=0, atol=0)
    # oneplus: the scheme's (unconstrained here) strength plus one.
    np.testing.assert_allclose(
        r_params["strength"][:, 0, 0].numpy(), xi[:, W].numpy() + 1, atol=TOL
    )
