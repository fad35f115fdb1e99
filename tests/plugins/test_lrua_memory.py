"""The LRUA memory (Santoro et al. 2016, eqs. 2-8) against float64 references from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import Addressing, Options, collect_garbage, detach_state
from nma_plugins.addressing import ContentAddressing, NTMAddressing
from nma_plugins.memories import nma_register_memories
from nma_plugins.memories.lrua import (
    LRUAMemory,
    LRUAState,
    least_used_weights,
    usage_update,
    write_weightings,
)

B, N, W, R = 2, 6, 3, 2  # batch, slots, width, read heads
GAMMA = 0.9
EPS = 1e-6  # the content addressing's default cosine epsilon
TOL = 1e-10


# --- independent reference (plain Python floats, straight from the paper) ---------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def ref_cosine(u, v) -> float:
    """Eq. 2 (with the content addressing's epsilon in the denominator)."""
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + EPS)


def ref_read_weights(key, beta, memory):
    """Eq. 3 with a key strength beta (beta = 1 is the paper's): a softmax over slots."""
    scores = [math.exp(beta * ref_cosine(key, row)) for row in memory]
    return [s / sum(scores) for s in scores]


def ref_least_used(usage, n):
    """Eq. 6: 1 on the n slots of smallest usage; ties go to the lower index."""
    chosen = sorted(range(len(usage)), key=lambda i: (usage[i], i))[:n]
    return [1.0 if i in chosen else 0.0 for i in range(len(usage))]


def ref_step(interface, memory, usage, read_weights, erase="all", gamma=GAMMA):
    """One LRUA step for one batch element, parsing the documented interface layout.

    interface (R (W + 1) + R,), memory (N, W), usage (N,), read_weights (R, N).
    Returns reads (R W,), memory (N, W), usage (N,), read weights (R, N), write weights (R, N).
    """
    heads = len(read_weights)
    slots, width = len(memory), len(memory[0])
    p = width + 1
    keys = [interface[h * p : h * p + width] for h in range(heads)]
    betas = [softplus(interface[h * p + width]) for h in range(heads)]
    gates = [sigmoid(a) for a in interface[heads * p :]]
    least = ref_least_used(usage, heads)  # w^lu_{t-1}, eq. 6
    erased = least if erase == "all" else ref_least_used(usage, 1)
    # Eq. 7 per head.
    write = [
        [gates[h] * read_weights[h][i] + (1 - gates[h]) * least[i] for i in range(slots)]
        for h in range(heads)
    ]
    # Erase, then eq. 8 per head (the heads' writes add).
    new_memory = []
    for i in range(slots):
        row = []
        for j in range(width):
            value = 0.0 if erased[i] == 1.0 else memory[i][j]
            value += sum(write[h][i] * keys[h][j] for h in range(heads))
            row.append(value)
        new_memory.append(row)
    # Eqs. 2-4 on M_t.
    reads_w = [ref_read_weights(keys[h], betas[h], new_memory) for h in range(heads)]
    reads = [
        sum(reads_w[h][i] * new_memory[i][j] for i in range(slots))
        for h in range(heads)
        for j in range(width)
    ]
    # Eq. 5, summed over heads.
    new_usage = [
        gamma * usage[i]
        + sum(reads_w[h][i] for h in range(heads))
        + sum(write[h][i] for h in range(heads))
        for i in range(slots)
    ]
    return reads, new_memory, new_usage, reads_w, write


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(factory="content", **overrides) -> LRUAMemory:
    options = {"slots": N, "width": W, "read_heads": R, "gamma": GAMMA, **overrides}
    if factory == "content":
        factory = lambda width, heads: ContentAddressing(  # noqa: E731
            ContentAddressing.Config(), width, heads
        )
    return LRUAMemory(LRUAMemory.Config(**options), factory).double()


def random_state(rng: np.random.Generator, heads: int = R) -> LRUAState:
    """A state with distinct usages (no ties in eq. 6)."""
    usage = rng.permutation(N) * 0.3 + rng.uniform(0.0, 0.1, size=(B, N))
    return LRUAState(
        memory=t(rng.normal(size=(B, N, W))),
        usage=t(usage),
        read_weights=t(rng.dirichlet(np.ones(N), size=(B, heads))),
        write_weights=t(rng.dirichlet(np.ones(N), size=(B, heads))),
    )


def state_lists(state: LRUAState, b: int):
    return (
        state.memory[b].tolist(),
        state.usage[b].tolist(),
        state.read_weights[b].tolist(),
    )


class StubAddressing(Addressing):
    """Returns weightings set by the test and records what it was given."""

    def __init__(self, config: Options, width: int, heads: int) -> None:
        super().__init__(config, width, heads)
        self.params = {"key": width, "extra": 2}
        self.weights: torch.Tensor | None = None
        self.seen: tuple | None = None

    def forward(self, params, memory, prev_weights):
        self.seen = (params, memory, prev_weights)
        return self.weights


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes_and_layout() -> None:
    memory = make()
    assert memory.addressing.heads == R
    assert memory.interface_size == R * (W + 1) + R == 10
    assert memory.read_size == R * W
    stub = make(lambda width, heads: StubAddressing(Options(), width, heads))
    assert stub.interface_size == R * (W + 2) + R
    assert LRUAMemory.default_addressing == "content"


def test_config_defaults_and_limits() -> None:
    config = LRUAMemory.Config()
    assert (config.slots, config.width, config.read_heads) == (128, 40, 4)
    assert (config.gamma, config.erase) == (0.95, "all")
    for name in ("slots", "width", "read_heads"):
        with pytest.raises(ValidationError):
            LRUAMemory.Config(**{name: 0})
    for gamma in (-0.1, 1.1):
        with pytest.raises(ValidationError):
            LRUAMemory.Config(gamma=gamma)
    LRUAMemory.Config(gamma=0.0)
    LRUAMemory.Config(gamma=1.0)
    with pytest.raises(ValidationError):
        LRUAMemory.Config(erase="some")
    with pytest.raises(ValidationError):
        LRUAMemory.Config(rows=3)
    for field in LRUAMemory.Config.model_fields.values():
        assert field.description


def test_constructor_checks() -> None:
    with pytest.raises(ValueError, match="read_heads <= slots"):
        LRUAMemory(LRUAMemory.Config(slots=3, read_heads=4))

    class NoKey(Addressing):
        def __init__(self, config: Options, width: int, heads: int) -> None:
            super().__init__(config, width, heads)
            self.params = {"query": width}

    with pytest.raises(ValueError, match="'key'"):
        LRUAMemory(LRUAMemory.Config(), lambda width, heads: NoKey(Options(), width, heads))


def test_plain_module_without_a_factory() -> None:
    memory = LRUAMemory(LRUAMemory.Config(slots=8, width=4, read_heads=2))
    assert isinstance(memory.addressing, ContentAddressing)
    state = memory.initial_state(3, torch.device("cpu"), torch.float32)
    reads, state = memory(torch.randn(3, memory.interface_size), state)
    assert reads.shape == (3, 8) and isinstance(state, LRUAState)


def test_initial_state() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, LRUAState)
    shapes = {"memory": (B, N, W), "usage": (B, N), "read_weights": (B, R, N)}
    shapes["write_weights"] = (B, R, N)
    for name, shape in shapes.items():
        tensor = getattr(state, name)
        assert tensor.shape == shape and tensor.dtype == torch.float32
        assert bool((tensor == 0).all())


# --- the equations one at a time ------------------------------------------------------------


def test_least_used_matches_reference() -> None:
    rng = np.random.default_rng(0)
    usage = rng.uniform(size=(4, 9))
    usage[0, 3] = usage[0, 5] = usage[0, 7]  # a three-way tie
    usage[1] = 0.0  # all tied
    for n in (1, 2, 3, 9):
        got = least_used_weights(t(usage), n)
        want = [ref_least_used(list(row), n) for row in usage]
        np.testing.assert_array_equal(got.numpy(), want)
        assert bool((got.sum(-1) == n).all())


def test_least_used_ties_by_hand() -> None:
    # The paper's "w^u(i) <= m(w^u, n)" would mark all four tied slots; exactly n are
    # marked, the lowest indices among the tied ones.
    usage = t([[0.3, 0.1, 0.1, 0.1, 0.2, 0.1]])
    np.testing.assert_array_equal(least_used_weights(usage, 1).numpy(), [[0, 1, 0, 0, 0, 0]])
    np.testing.assert_array_equal(least_used_weights(usage, 2).numpy(), [[0, 1, 1, 0, 0, 0]])
    np.testing.assert_array_equal(least_used_weights(usage, 5).numpy(), [[0, 1, 1, 1, 1, 1]])
    distinct = t([[0.5, 0.2, 0.9, 0.7]])
    np.testing.assert_array_equal(least_used_weights(distinct, 2).numpy(), [[1, 1, 0, 0]])


def test_usage_and_write_weights_by_hand() -> None:
    # Eq. 5: 0.5 * (1, 2) + reads (0.25 + 0.5, 0.75 + 0.5) + writes (1 + 0, 0 + 1).
    usage = t([[1.0, 2.0]])
    reads = t([[[0.25, 0.75], [0.5, 0.5]]])
    writes = t([[[1.0, 0.0], [0.0, 1.0]]])
    np.testing.assert_allclose(
        usage_update(usage, reads, writes, 0.5).numpy(), [[2.25, 3.25]], rtol=0, atol=TOL
    )
    # Eq. 7: sigma = 0.25: 0.25 * (0.6, 0.4, 0) + 0.75 * (0, 0, 1).
    got = write_weightings(t([[[0.6, 0.4, 0.0]]]), t([[0.0, 0.0, 1.0]]), t([[[0.25]]]))
    np.testing.assert_allclose(got.numpy(), [[[0.15, 0.1, 0.75]]], rtol=0, atol=TOL)


def test_erase_and_write_by_hand() -> None:
    # One head; usage (0.5, 0.2, 0.9, 0.7): slot 1 is least used. The previous read was
    # on slot 2. sigma(alpha) = 0.25, key (1, 2): w^w = (0, 0.75, 0.25, 0); slot 1 is
    # erased, then gets 0.75 k; slot 2 keeps its row plus 0.25 k.
    memory = make(
        lambda width, heads: StubAddressing(Options(), width, heads),
        slots=4,
        width=2,
        read_heads=1,
        gamma=0.95,
    )
    rows = [[1.0, -1.0], [4.0, 5.0], [2.0, 0.5], [-3.0, 1.0]]
    state = LRUAState(
        memory=t([rows]),
        usage=t([[0.5, 0.2, 0.9, 0.7]]),
        read_weights=t([[[0.0, 0.0, 1.0, 0.0]]]),
        write_weights=torch.zeros(1, 1, 4, dtype=torch.float64),
    )
    memory.addressing.weights = t([[[0.1, 0.2, 0.3, 0.4]]])
    interface = t([[1.0, 2.0, 0.0, 0.0, math.log(1 / 3)]])  # key, extra (2), alpha
    reads, new = memory(interface, state)
    want_rows = [[1.0, -1.0], [0.75, 1.5], [2.25, 1.0], [-3.0, 1.0]]
    np.testing.assert_allclose(new.memory[0].numpy(), want_rows, rtol=0, atol=TOL)
    np.testing.assert_allclose(new.write_weights[0, 0].numpy(), [0, 0.75, 0.25, 0], atol=TOL)
    # Eq. 4 reads M_t with the addressing's weights.
    want_read = [
        sum(w * r[j] for w, r in zip([0.1, 0.2, 0.3, 0.4], want_rows, strict=True)) for j in (0, 1)
    ]
    np.testing.assert_allclose(reads[0].numpy(), want_read, rtol=0, atol=TOL)
    # Eq. 5: 0.95 u + w^r + w^w.
    want_usage = [
        0.95 * 0.5 + 0.1,
        0.95 * 0.2 + 0.2 + 0.75,
        0.95 * 0.9 + 0.3 + 0.25,
        0.95 * 0.7 + 0.4,
    ]
    np.testing.assert_allclose(new.usage[0].numpy(), want_usage, rtol=0, atol=TOL)
    # The addressing saw the written memory M_t and the previous read weights.
    params, seen_memory, seen_prev = memory.addressing.seen
    np.testing.assert_allclose(seen_memory[0].numpy(), want_rows, rtol=0, atol=TOL)
    torch.testing.assert_close(seen_prev, state.read_weights, rtol=0, atol=0)
    np.testing.assert_array_equal(params["key"].numpy(), [[[1.0, 2.0]]])
    np.testing.assert_array_equal(params["extra"].numpy(), [[[0.0, 0.0]]])


def test_erase_one_versus_all_by_hand() -> None:
    # Two heads, so two least-used slots (1 and 3). 'all' zeroes both before the write,
    # 'one' only slot 1. With sigma -> 0 both heads write their key to both slots.
    rows = [[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]]
    usage = [[0.9, 0.1, 0.8, 0.2]]
    keys = [[1.0, 0.0], [0.0, 1.0]]
    for erase, slot3 in (("all", [1.0, 1.0]), ("one", [5.0, 5.0])):
        memory = make(
            lambda width, heads: StubAddressing(Options(), width, heads),
            slots=4,
            width=2,
            read_heads=2,
            erase=erase,
        )
        memory.addressing.weights = torch.full((1, 2, 4), 0.25, dtype=torch.float64)
        state = LRUAState(t([rows]), t(usage), torch.zeros(1, 2, 4, dtype=torch.float64),
                          torch.zeros(1, 2, 4, dtype=torch.float64))  # fmt: skip
        interface = t([keys[0] + [0.0, 0.0] + keys[1] + [0.0, 0.0] + [-800.0, -800.0]])
        _, new = memory(interface, state)
        want = [[1.0, 1.0], [1.0, 1.0], [3.0, 3.0], slot3]
        np.testing.assert_allclose(new.memory[0].numpy(), want, rtol=0, atol=TOL)


def test_first_writes_fill_the_first_slots() -> None:
    # From the empty initial state every usage ties at 0: the n = R least-used slots
    # are slots 0 .. R-1, and only they are written.
    memory = make(read_heads=3)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    interface = torch.randn(B, memory.interface_size, dtype=torch.float64)
    _, state = memory(interface, state)
    assert bool((state.memory[:, :3].abs().sum(-1) > 0).all())
    assert bool((state.memory[:, 3:] == 0).all())


def test_read_finds_the_written_key() -> None:
    # One head on the empty memory: the key k goes to slot 0 as (1 - sigma) k; with a
    # large strength the read focuses on it (cosine 1; the zero rows score 0).
    memory = make(read_heads=1)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    key = [0.6, -0.3, 0.9]
    interface = t([key + [60.0, 0.0]])  # beta = softplus(60) = 60, sigma = 0.5
    reads, new = memory(interface, state)
    weights = ref_read_weights(key, 60.0, [[0.5 * k for k in key]] + [[0.0] * W] * (N - 1))
    np.testing.assert_allclose(new.read_weights[0, 0].numpy(), weights, rtol=0, atol=TOL)
    assert weights[0] > 0.999
    np.testing.assert_allclose(reads[0].numpy(), [weights[0] * 0.5 * k for k in key], atol=TOL)


# --- whole steps ------------------------------------------------------------------------


@pytest.mark.parametrize("erase", ["all", "one"])
def test_full_steps_match_reference(erase: str) -> None:
    rng = np.random.default_rng(5)
    memory = make(erase=erase)
    state = random_state(rng)
    refs = [state_lists(state, b) for b in range(B)]
    for _ in range(4):
        interface = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            mem, usage, rw = refs[b]
            want_reads, mem, usage, rw, ww = ref_step(list(interface[b]), mem, usage, rw, erase)
            refs[b] = (mem, usage, rw)
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), mem, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.usage[b].numpy(), usage, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.read_weights[b].numpy(), rw, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.write_weights[b].numpy(), ww, rtol=0, atol=TOL)


def test_steps_from_the_initial_state_match_reference() -> None:
    # Starts with all usages tied at zero: the tie rule of the reference must agree.
    rng = np.random.default_rng(6)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    refs = [state_lists(state, b) for b in range(B)]
    for _ in range(3):
        interface = rng.normal(size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            want_reads, mem, usage, rw, _ = ref_step(list(interface[b]), *refs[b])
            refs[b] = (mem, usage, rw)
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.usage[b].numpy(), usage, rtol=0, atol=TOL)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_weight_properties_over_steps(dtype: torch.dtype) -> None:
    torch.manual_seed(7)
    memory = make().to(dtype)
    state = memory.initial_state(B, torch.device("cpu"), dtype)
    for _ in range(6):
        interface = torch.randn(B, memory.interface_size, dtype=dtype)
        prev_read_total = state.read_weights.sum(-1)  # 0 at the first step, then 1
        reads, state = memory(interface, state)
        assert reads.dtype == dtype and bool(torch.isfinite(reads).all())
        assert bool((state.read_weights >= 0).all()) and bool((state.write_weights >= 0).all())
        assert bool((state.usage >= 0).all())
        torch.testing.assert_close(state.read_weights.sum(-1), torch.ones(B, R, dtype=dtype))
        # Each head's write weights sum to sigma * sum(w^r_{t-1}) + (1 - sigma) * n.
        gate = torch.sigmoid(interface[:, -R:])
        want = gate * prev_read_total + (1 - gate) * R
        torch.testing.assert_close(state.write_weights.sum(-1), want)


def test_ntm_addressing_can_be_chosen() -> None:
    memory = make(lambda width, heads: NTMAddressing(NTMAddressing.Config(), width, heads))
    assert memory.interface_size == R * (W + 1 + 1 + 3 + 1) + R
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(3):
        reads, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    assert bool(torch.isfinite(reads).all())
    torch.testing.assert_close(state.read_weights.sum(-1), torch.ones(B, R, dtype=torch.float64))


# --- garbage collection contract ----------------------------------------------------------


@pytest.mark.parametrize("erase", ["all", "one"])
def test_reorder_slots_keeps_the_next_reads(erase: str) -> None:
    rng = np.random.default_rng(8)
    memory = make(erase=erase)
    state = random_state(rng)
    order = torch.stack([torch.randperm(N) for _ in range(B)])
    moved = memory.reorder_slots(state, order)
    for b in range(B):
        for i in range(N):
            j = int(order[b, i])
            assert torch.equal(moved.memory[b, i], state.memory[b, j])
            assert float(moved.usage[b, i]) == float(state.usage[b, j])
            assert torch.equal(moved.read_weights[b, :, i], state.read_weights[b, :, j])
            assert torch.equal(moved.write_weights[b, :, i], state.write_weights[b, :, j])
    interface = t(rng.normal(scale=2.0, size=(B, memory.interface_size)))
    reads, after = memory(interface, state)
    reads_moved, after_moved = memory(interface, moved)
    torch.testing.assert_close(reads_moved, reads, rtol=0, atol=1e-12)
    torch.testing.assert_close(after_moved, memory.reorder_slots(after, order), rtol=0, atol=1e-12)


def test_clear_slots_frees_them_for_the_next_write() -> None:
    rng = np.random.default_rng(9)
    memory = make(read_heads=1)
    state = random_state(rng, heads=1)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, 4] = True
    mask[1, 2] = True
    cleared = memory.clear_slots(state, mask)
    for tensor in (cleared.memory[0, 4], cleared.memory[1, 2], cleared.usage[0, 4]):
        assert bool((tensor == 0).all())
    assert bool((cleared.read_weights[0, :, 4] == 0).all())
    assert bool((cleared.write_weights[1, :, 2] == 0).all())
    torch.testing.assert_close(cleared.memory[0, :4], state.memory[0, :4], rtol=0, atol=0)
    np.testing.assert_array_equal(
        least_used_weights(cleared.usage, 1).numpy(), [np.eye(N)[4], np.eye(N)[2]]
    )
    # The next step writes its key into the freed slot: (1 - sigma) k with sigma -> 0.
    interface = t(rng.normal(size=(B, memory.interface_size)))
    interface[:, -1] = -800.0
    _, after = memory(interface, cleared)
    torch.testing.assert_close(after.memory[0, 4], interface[0, :W], rtol=0, atol=TOL)
    torch.testing.assert_close(after.memory[1, 2], interface[1, :W], rtol=0, atol=TOL)


def test_slot_usage_and_collect_garbage() -> None:
    memory = make()
    usage = t([[0.0, 0.5, 1.5, 1e-9, 0.99, 3.0], [2.0, 0.0, 0.2, 0.0, 1.0, 0.4]])
    state = LRUAState(
        memory=torch.ones(B, N, W, dtype=torch.float64),
        usage=usage,
        read_weights=torch.full((B, R, N), 1 / N, dtype=torch.float64),
        write_weights=torch.full((B, R, N), 1 / N, dtype=torch.float64),
    )
    np.testing.assert_array_equal(
        memory.slot_usage(state).numpy(), [[0, 0.5, 1, 1e-9, 0.99, 1], [1, 0, 0.2, 0, 1, 0.4]]
    )
    new, live = collect_garbage(memory, state, threshold=1e-6)
    assert live.tolist() == [4, 4]
    np.testing.assert_array_equal(new.usage[0].numpy(), [0.5, 1.5, 0.99, 3.0, 0, 0])
    assert bool((new.memory[:, 4:] == 0).all()) and bool((new.memory[:, :4] == 1).all())


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert set(seen) == {"read_weights", "write_weights", "usage", "least_used", "memory"}
    assert seen["read_weights"].shape == (B, R, N) and seen["write_weights"].shape == (B, R, N)
    assert seen["usage"].shape == (B, N) and seen["memory"].shape == (B, N, W)
    torch.testing.assert_close(seen["least_used"], least_used_weights(state.usage, R))
    torch.testing.assert_close(seen["memory"], state.memory, rtol=0, atol=0)


def test_gradcheck_full_step() -> None:
    rng = np.random.default_rng(10)
    memory = make()
    base = random_state(rng)
    interface = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    inputs = [base.memory, base.usage, base.read_weights]
    inputs = [x.clone().requires_grad_() for x in inputs]

    def fn(interface, mem, usage, read_weights):
        state = LRUAState(mem, usage, read_weights, base.write_weights)
        reads, new = memory(interface, state)
        return reads, new.memory, new.usage, new.read_weights, new.write_weights

    assert torch.autograd.gradcheck(fn, (interface, *inputs))


def test_float32_long_run_stays_finite() -> None:
    torch.manual_seed(11)
    memory = LRUAMemory(LRUAMemory.Config(slots=16, width=8))
    state = memory.initial_state(4, torch.device("cpu"), torch.float32)
    for step in range(300):
        interface = (torch.randn(4, memory.interface_size) * 3).requires_grad_()
        reads, state = memory(interface, state)
        if step % 50 == 49:
            state = detach_state(state)
    assert bool(torch.isfinite(reads).all())
    assert all(bool(torch.isfinite(x).all()) for x in state)
    reads.sum().backward()
    assert bool(torch.isfinite(interface.grad).all())


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["lrua"] is LRUAMemory
