"""The NTM memory (eqs. 2-4, section 3.2) against float64 references written from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import Addressing, Options
from nma_plugins.addressing import NTMAddressing
from nma_plugins.memories import NTMMemory, nma_register_memories
from nma_plugins.memories.ntm import NTMState

B, N, W, R, WH = 2, 5, 3, 2, 2  # batch, slots, width, read heads, write heads
H = WH + R
TOL = 1e-10


# --- independent reference (plain Python floats, straight from the paper) ---------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def ref_write(memory, write_weights, erases, adds):
    """Eqs. 3-4 with several heads (section 3.2): erasures multiply, additions add.

    memory (N, W), write_weights (Wh, N), erases (Wh, W), adds (Wh, W) -> (N, W).
    """
    out = []
    for i in range(len(memory)):
        row = []
        for j in range(len(memory[i])):
            keep = 1.0
            for w, e in zip(write_weights, erases, strict=True):
                keep *= 1 - w[i] * e[j]
            added = sum(w[i] * a[j] for w, a in zip(write_weights, adds, strict=True))
            row.append(memory[i][j] * keep + added)
        out.append(row)
    return out


def ref_read(memory, weights):
    """Eq. 2: r(j) = sum_i w(i) M(i, j). memory (N, W), weights (N,) -> (W,)."""
    slots, width = len(memory), len(memory[0])
    return [sum(weights[i] * memory[i][j] for i in range(slots)) for j in range(width)]


def ref_ntm_weights(raw, memory, prev, eps=1e-6):
    """Eqs. 5-9 for one head from its raw interface values (key, beta, g, s, gamma)."""
    n, w = len(memory), len(memory[0])
    key = raw[:w]
    beta, gate, gamma = softplus(raw[w]), sigmoid(raw[w + 1]), 1 + softplus(raw[-1])
    shift_raw = raw[w + 2 : -1]
    shift = [math.exp(x) / sum(math.exp(y) for y in shift_raw) for x in shift_raw]

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + eps)

    scores = [math.exp(beta * cosine(key, row)) for row in memory]
    content = [s / sum(scores) for s in scores]
    gated = [gate * c + (1 - gate) * p for c, p in zip(content, prev, strict=True)]
    r = (len(shift) - 1) // 2
    shifted = [sum(gated[(i - k) % n] * shift[k + r] for k in range(-r, r + 1)) for i in range(n)]
    powered = [x**gamma for x in shifted]
    return [p / sum(powered) for p in powered]


def ref_step(interface, memory, read_weights, write_weights):
    """One full NTM step for one batch element, parsing the documented interface layout.

    interface (interface_size,), memory (N, W), read_weights (R, N), write_weights (Wh, N).
    Returns reads (R * W,), new memory (N, W), read weights (R, N), write weights (Wh, N).
    """
    p = W + 1 + 1 + 3 + 1
    prev = list(write_weights) + list(read_weights)
    weights = [ref_ntm_weights(interface[h * p : (h + 1) * p], memory, prev[h]) for h in range(H)]
    base = H * p
    erases, adds = [], []
    for h in range(WH):
        block = interface[base + h * 2 * W : base + (h + 1) * 2 * W]
        erases.append([sigmoid(x) for x in block[:W]])
        adds.append([math.tanh(x) for x in block[W:]])
    new_memory = ref_write(memory, weights[:WH], erases, adds)
    reads = [x for w in weights[WH:] for x in ref_read(new_memory, w)]
    return reads, new_memory, weights[WH:], weights[:WH]


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def ntm_factory(width: int, heads: int) -> Addressing:
    return NTMAddressing(NTMAddressing.Config(), width, heads)


class StubAddressing(Addressing):
    """Returns weightings set by the test and records what it was given."""

    def __init__(self, config: Options, width: int, heads: int) -> None:
        super().__init__(config, width, heads)
        self.params = {"a": 2, "b": 1}
        self.weights: torch.Tensor | None = None
        self.seen: tuple | None = None

    def forward(self, params, memory, prev_weights):
        self.seen = (params, memory, prev_weights)
        return self.weights


def stub_factory(width: int, heads: int) -> StubAddressing:
    return StubAddressing(Options(), width, heads)


def make(factory=ntm_factory, **overrides) -> NTMMemory:
    config = NTMMemory.Config(
        **{"slots": N, "width": W, "read_heads": R, "write_heads": WH, **overrides}
    )
    return NTMMemory(config, factory).double()


def random_state(rng: np.random.Generator) -> NTMState:
    return NTMState(
        memory=t(rng.normal(size=(B, N, W))),
        read_weights=t(rng.dirichlet(np.ones(N), size=(B, R))),
        write_weights=t(rng.dirichlet(np.ones(N), size=(B, WH))),
    )


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes() -> None:
    memory = make()
    head = W + 1 + 1 + 3 + 1
    assert memory.addressing.heads == H
    assert memory.interface_size == H * head + WH * 2 * W == 48
    assert memory.read_size == R * W
    assert make(stub_factory).interface_size == H * 3 + WH * 2 * W
    assert NTMMemory.default_addressing == "ntm"


def test_needs_an_addressing() -> None:
    with pytest.raises(ValueError, match="addressing"):
        NTMMemory(NTMMemory.Config(), None)


def test_config_limits() -> None:
    config = NTMMemory.Config()
    assert (config.slots, config.width, config.read_heads, config.write_heads) == (128, 20, 1, 1)
    for name in ("slots", "width", "read_heads", "write_heads"):
        with pytest.raises(ValidationError):
            NTMMemory.Config(**{name: 0})
        assert NTMMemory.Config.model_fields[name].description
    with pytest.raises(ValidationError):
        NTMMemory.Config(rows=3)


def test_initial_state() -> None:
    torch.manual_seed(0)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, NTMState)
    assert state.memory.shape == (B, N, W) and state.memory.dtype == torch.float32
    assert state.read_weights.shape == (B, R, N) and state.read_weights.dtype == torch.float32
    assert state.write_weights.shape == (B, WH, N)
    for b in range(B):
        torch.testing.assert_close(state.memory[b], memory.memory_init.float())
    bound = 1 / math.sqrt(N + W)
    assert float(memory.memory_init.detach().abs().max()) <= bound
    assert float(memory.memory_init.detach().std()) > 0.1 * bound  # not all zero
    one_hot = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    assert bool((state.read_weights == one_hot).all())
    assert bool((state.write_weights == one_hot).all())


def test_initial_memory_is_deterministic_given_the_seed() -> None:
    torch.manual_seed(1)
    a = make().memory_init.detach().clone()
    torch.manual_seed(1)
    b = make().memory_init.detach().clone()
    torch.manual_seed(2)
    c = make().memory_init.detach().clone()
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.equal(a, c)


def test_initial_memory_is_learned() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    interface = t(np.random.default_rng(0).normal(size=(B, memory.interface_size)))
    reads, _ = memory(interface, state)
    reads.sum().backward()
    assert memory.memory_init.grad is not None
    assert float(memory.memory_init.grad.abs().sum()) > 0


# --- the interface layout, the write and the read, with the addressing stubbed -------------


def test_interface_layout_write_and_read() -> None:
    rng = np.random.default_rng(3)
    memory = make(stub_factory)
    head_raw = rng.normal(size=(B, H, 3))  # per head: a (2), b (1)
    erase_raw = rng.normal(size=(B, WH, W))
    add_raw = rng.normal(size=(B, WH, W))
    # The documented layout: every head's parameters (write heads first), then per
    # write head its erase vector and its add vector.
    interface = []
    for b in range(B):
        row = [x for h in range(H) for x in head_raw[b, h]]
        for h in range(WH):
            row += list(erase_raw[b, h]) + list(add_raw[b, h])
        interface.append(row)
    assert len(interface[0]) == memory.interface_size

    weights = rng.dirichlet(np.ones(N), size=(B, H))
    weights[0, 0] = weights[0, 1]  # both write heads on the same slots: erasures compound
    memory.addressing.weights = t(weights)
    state = random_state(rng)
    reads, new = memory(t(interface), state)

    params, seen_memory, seen_prev = memory.addressing.seen
    np.testing.assert_array_equal(params["a"].numpy(), head_raw[..., :2])
    np.testing.assert_array_equal(params["b"].numpy(), head_raw[..., 2:])
    torch.testing.assert_close(seen_memory, state.memory, rtol=0, atol=0)  # M_{t-1}
    torch.testing.assert_close(
        seen_prev, torch.cat([state.write_weights, state.read_weights], dim=1), rtol=0, atol=0
    )

    assert reads.shape == (B, R * W)
    for b in range(B):
        erases = [[sigmoid(x) for x in erase_raw[b, h]] for h in range(WH)]
        adds = [[math.tanh(x) for x in add_raw[b, h]] for h in range(WH)]
        want_memory = ref_write(state.memory[b].tolist(), weights[b, :WH].tolist(), erases, adds)
        np.testing.assert_allclose(new.memory[b].numpy(), want_memory, rtol=0, atol=TOL)
        want_reads = [x for h in range(WH, H) for x in ref_read(want_memory, weights[b, h])]
        np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
    np.testing.assert_array_equal(new.write_weights.numpy(), weights[:, :WH])
    np.testing.assert_array_equal(new.read_weights.numpy(), weights[:, WH:])


def test_erase_then_add_by_hand() -> None:
    # One write head fully on slot 1, erase (1, 0.5, 0), add (0.25, 0, -0.5):
    # row 1 = (m0 * 0 + 0.25, m1 * 0.5 + 0, m2 * 1 - 0.5); other rows unchanged.
    memory = make(stub_factory, read_heads=1, write_heads=1)
    state = NTMState(
        memory=t(np.arange(B * N * W, dtype=float).reshape(B, N, W)),
        read_weights=t(np.full((B, 1, N), 1 / N)),
        write_weights=t(np.full((B, 1, N), 1 / N)),
    )
    weights = np.zeros((B, 2, N))
    weights[:, 0, 1] = 1.0  # the write head
    weights[:, 1, 1] = 1.0  # the read head reads the slot just written
    memory.addressing.weights = t(weights)
    erase_raw = [60.0, 0.0, -60.0]  # sigmoid -> 1, 0.5, 0
    add_raw = [math.atanh(0.25), 0.0, math.atanh(-0.5)]
    interface = t([[0.0] * 6 + erase_raw + add_raw] * B)
    reads, new = memory(interface, state)
    want = state.memory.clone()
    for b in range(B):
        m0, m1, m2 = state.memory[b, 1].tolist()
        want[b, 1] = t([0.25, m1 * 0.5, m2 - 0.5])
    torch.testing.assert_close(new.memory, want, rtol=0, atol=TOL)
    torch.testing.assert_close(reads, want[:, 1], rtol=0, atol=TOL)


def test_read_sees_what_was_written() -> None:
    rng = np.random.default_rng(4)
    memory = make(stub_factory)
    state = random_state(rng)
    target = [0.5, -0.25, 0.75]
    weights = np.zeros((B, H, N))
    weights[:, 0, 3] = 1.0  # write head 0: slot 3, erase everything, add the target
    weights[:, 1, 0] = 1.0  # write head 1: slot 0, erase nothing, add nothing
    weights[:, 2, 3] = 1.0  # read head 0: slot 3
    weights[:, 3, 0] = 0.5  # read head 1: half slot 0, half slot 3
    weights[:, 3, 3] = 0.5
    memory.addressing.weights = t(weights)
    write0 = [60.0] * W + [math.atanh(x) for x in target]
    write1 = [-60.0] * W + [0.0] * W
    interface = t([[0.0] * (H * 3) + write0 + write1] * B)
    reads, new = memory(interface, state)
    for b in range(B):
        np.testing.assert_allclose(reads[b, :W].numpy(), target, rtol=0, atol=TOL)
        old_slot0 = state.memory[b, 0].numpy()
        want = 0.5 * old_slot0 + 0.5 * np.array(target)
        np.testing.assert_allclose(reads[b, W:].numpy(), want, rtol=0, atol=TOL)
        # Rows no head wrote to are unchanged.
        np.testing.assert_array_equal(new.memory[b, [1, 2, 4]].numpy(), state.memory[b, [1, 2, 4]])


# --- the whole step with the NTM addressing ---------------------------------------------


def test_full_steps_match_reference() -> None:
    rng = np.random.default_rng(5)
    memory = make()
    state = random_state(rng)
    ref_states = [
        (state.memory[b].tolist(), state.read_weights[b].tolist(), state.write_weights[b].tolist())
        for b in range(B)
    ]
    for _ in range(3):
        interface = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            mem, rw, ww = ref_states[b]
            want_reads, mem, rw, ww = ref_step(list(interface[b]), mem, rw, ww)
            ref_states[b] = (mem, rw, ww)
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), mem, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.read_weights[b].numpy(), rw, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.write_weights[b].numpy(), ww, rtol=0, atol=TOL)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weights_are_distributions_over_steps(dtype: torch.dtype) -> None:
    torch.manual_seed(6)
    memory = make().to(dtype)
    state = memory.initial_state(B, torch.device("cpu"), dtype)
    for _ in range(5):
        reads, state = memory(torch.randn(B, memory.interface_size, dtype=dtype), state)
        assert reads.dtype == dtype and state.memory.dtype == dtype
        assert bool(torch.isfinite(reads).all()) and bool(torch.isfinite(state.memory).all())
        for weights in (state.read_weights, state.write_weights):
            assert bool((weights >= 0).all())
            torch.testing.assert_close(weights.sum(-1), torch.ones_like(weights[..., 0]))


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert set(seen) == {"read_weights", "write_weights", "memory"}
    assert seen["read_weights"].shape == (B, R, N)
    assert seen["write_weights"].shape == (B, WH, N)
    assert seen["memory"].shape == (B, N, W)
    torch.testing.assert_close(seen["memory"], state.memory, rtol=0, atol=0)


def test_gradcheck_full_step() -> None:
    rng = np.random.default_rng(7)
    memory = make()
    base = random_state(rng)
    interface = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    mem = base.memory.clone().requires_grad_()

    def fn(interface: torch.Tensor, mem: torch.Tensor):
        reads, state = memory(interface, base._replace(memory=mem))
        return reads, state.memory, state.read_weights, state.write_weights

    assert torch.autograd.gradcheck(fn, (interface, mem))


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["ntm"] is NTMMemory
