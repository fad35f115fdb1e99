"""The key-value attention memory: ring-buffer writes and attention reads, against references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import collect_garbage, detach_state
from nma_plugins.memories import nma_register_memories
from nma_plugins.memories.kv import KVMemory, KVState

B, N, D, W, R = 2, 4, 3, 2, 2  # batch, slots, key size, value width, heads
EPS = 1e-6
TOL = 1e-10


# --- independent reference (plain Python floats) ----------------------------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def ref_attention(query, keys, values, presence):
    """Vaswani eq. 1 over the slots with presence > eps, each weighted by its presence."""
    present = [i for i in range(len(keys)) if presence[i] > EPS]
    if not present:
        return [0.0] * len(values[0]), [0.0] * len(keys)
    d = len(query)
    score = {i: sum(a * b for a, b in zip(query, keys[i], strict=True)) / math.sqrt(d)
             for i in present}  # fmt: skip
    top = max(score.values())
    raw = {i: presence[i] * math.exp(score[i] - top) for i in present}
    weights = [raw.get(i, 0.0) / sum(raw.values()) for i in range(len(keys))]
    out = [sum(weights[i] * values[i][j] for i in range(len(keys))) for j in range(len(values[0]))]
    return out, weights


def ref_step(
    interface, keys, values, presence, queue, heads, key_size, width, hops, read_query=False
):
    """One step for one batch element: write the slot whose queue place is 0, then read.

    Returns reads (heads * width,), keys, values, presence, queue, read weights (heads, N),
    write weights (N,).
    """
    n = len(keys)
    key = list(interface[:key_size])
    value = list(interface[key_size : key_size + width])
    gate = sigmoid(interface[key_size + width])
    queries = [
        list(
            interface[
                key_size + width + 1 + h * key_size : key_size + width + 1 + (h + 1) * key_size
            ]
        )
        for h in range(heads)
    ]
    slot = queue.index(0)
    keys = [key if i == slot else list(keys[i]) for i in range(n)]
    values = [value if i == slot else list(values[i]) for i in range(n)]
    presence = [gate if i == slot else presence[i] for i in range(n)]
    queue = [(q - 1) % n for q in queue]
    reads, read_weights = [], []
    for h in range(heads):
        u = queries[h]
        total = [0.0] * width
        for hop in range(hops):
            out, weights = ref_attention(u, keys, values, presence)
            total = [a + b for a, b in zip(total, out, strict=True)]
            if hop + 1 < hops or read_query:  # u^{k+1} = u^k + o^k
                u = [a + b for a, b in zip(u, out, strict=True)]
        reads += u if read_query else total
        read_weights.append(weights)
    write = [gate if i == slot else 0.0 for i in range(n)]
    return reads, keys, values, presence, queue, read_weights, write


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(**overrides) -> KVMemory:
    options = {"slots": N, "width": W, "key_size": D, "read_heads": R, **overrides}
    return KVMemory(KVMemory.Config(**options)).double()


def random_state(rng: np.random.Generator, key_size: int = D, width: int = W) -> KVState:
    presence = rng.uniform(0.2, 1.0, size=(B, N))
    presence[0, 2] = 0.0  # one unwritten slot
    return KVState(
        keys=t(rng.normal(size=(B, N, key_size))),
        values=t(rng.normal(size=(B, N, width))),
        presence=t(presence),
        queue=torch.stack([torch.randperm(N) for _ in range(B)]),
        read_weights=t(rng.dirichlet(np.ones(N), size=(B, R))),
        write_weights=torch.zeros(B, 1, N, dtype=torch.float64),
    )


def interface_row(key, value, gate_raw, queries) -> list[float]:
    return list(key) + list(value) + [gate_raw] + [x for q in queries for x in q]


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes() -> None:
    memory = make()
    assert memory.interface_size == D + W + 1 + R * D == 12
    assert memory.read_size == R * W
    assert KVMemory.default_addressing is None


def test_config_defaults_and_limits() -> None:
    config = KVMemory.Config()
    assert (config.slots, config.width, config.key_size) == (128, 32, 32)
    assert (config.read_heads, config.hops, config.eps) == (4, 1, 1e-6)
    for name in ("slots", "width", "key_size", "read_heads", "hops"):
        with pytest.raises(ValidationError):
            KVMemory.Config(**{name: 0})
    for eps in (0.0, 1.0):
        with pytest.raises(ValidationError):
            KVMemory.Config(eps=eps)
    with pytest.raises(ValidationError):
        KVMemory.Config(heads=2)
    for field in KVMemory.Config.model_fields.values():
        assert field.description


def test_hops_need_matching_sizes() -> None:
    with pytest.raises(ValueError, match="key_size == width"):
        KVMemory(KVMemory.Config(key_size=8, width=4, hops=2))
    with pytest.raises(ValueError, match="read_query"):
        KVMemory(KVMemory.Config(key_size=8, width=4, read_query=True))
    KVMemory(KVMemory.Config(key_size=8, width=4, hops=1))
    KVMemory(KVMemory.Config(key_size=4, width=4, hops=3))


def test_initial_state() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, KVState)
    shapes = {"keys": (B, N, D), "values": (B, N, W), "presence": (B, N)}
    shapes |= {"read_weights": (B, R, N), "write_weights": (B, 1, N)}
    for name, shape in shapes.items():
        tensor = getattr(state, name)
        assert tensor.shape == shape and tensor.dtype == torch.float32
        assert bool((tensor == 0).all())
    assert state.queue.dtype == torch.int64
    assert state.queue.tolist() == [[0, 1, 2, 3]] * B


# --- writes: the ring, the gate, the mask ---------------------------------------------------


def test_ring_order_and_wrap_around() -> None:
    memory = make()
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    for step in range(N + 2):
        key = [float(step + 1)] * D
        value = [10.0 * (step + 1), -float(step + 1)]
        interface = t([interface_row(key, value, 40.0, [[0.0] * D] * R)])
        _, state = memory(interface, state)
        slot = step % N
        assert state.write_weights[0, 0].argmax().item() == slot
        np.testing.assert_allclose(state.values[0, slot].numpy(), value, rtol=0, atol=0)
        np.testing.assert_allclose(state.keys[0, slot].numpy(), key, rtol=0, atol=0)
        assert state.queue[0].tolist() == [(i - step - 1) % N for i in range(N)]
    # After N + 2 steps slots 0 and 1 hold steps N+1 and N+2, slots 2, 3 steps 3 and 4.
    np.testing.assert_array_equal(state.values[0, :, 0].numpy(), [50.0, 60.0, 30.0, 40.0])


def test_write_gate_and_presence() -> None:
    memory = make()
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    gates = [0.3, -1.2, 2.0]
    for raw in gates:
        interface = t([interface_row([1.0] * D, [2.0] * W, raw, [[0.5] * D] * R)])
        _, state = memory(interface, state)
    want = [sigmoid(g) for g in gates] + [0.0]
    np.testing.assert_allclose(state.presence[0].numpy(), want, rtol=0, atol=TOL)
    np.testing.assert_allclose(
        state.write_weights[0, 0].numpy(), [0, 0, sigmoid(2.0), 0], rtol=0, atol=TOL
    )
    # An overwrite replaces the presence with the new gate.
    _, state = memory(t([interface_row([0.0] * D, [0.0] * W, 0.0, [[0.0] * D] * R)]), state)
    _, state = memory(t([interface_row([0.0] * D, [0.0] * W, -3.0, [[0.0] * D] * R)]), state)
    np.testing.assert_allclose(state.presence[0, 0].numpy(), sigmoid(-3.0), rtol=0, atol=TOL)


def test_gate_weights_attention_by_hand() -> None:
    # Two slots with equal scores, gates sigmoid(0) = 1/2 and sigmoid(ln 3) = 3/4:
    # attention (1/2, 3/4) / (5/4) = (0.4, 0.6) over values 1 and 2: read 1.6.
    memory = make(read_heads=1)
    state = memory.initial_state(1, torch.device("cpu"), torch.float64)
    _, state = memory(t([interface_row([1.0, 0, 0], [1.0, 0], 0.0, [[0.0] * D])]), state)
    reads, state = memory(
        t([interface_row([1.0, 0, 0], [2.0, 0], math.log(3), [[0.0] * D])]), state
    )
    np.testing.assert_allclose(state.read_weights[0, 0].numpy(), [0.4, 0.6, 0, 0], atol=TOL)
    np.testing.assert_allclose(reads[0].numpy(), [1.6, 0.0], rtol=0, atol=TOL)


def test_unwritten_slots_are_masked_out() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(2):
        reads, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    assert bool((state.read_weights[..., 2:] == 0).all())
    torch.testing.assert_close(state.read_weights.sum(-1), torch.ones(B, R, dtype=torch.float64))


def test_empty_memory_reads_zeros() -> None:
    # A gate of sigmoid(-800) = 0 <= eps: the only written slot is absent, so the step
    # has no written slot: zeros, not NaN, and finite gradients.
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    interface = torch.randn(B, memory.interface_size, dtype=torch.float64)
    interface[:, D + W] = -800.0
    interface.requires_grad_()
    reads, new = memory(interface, state)
    assert bool((reads == 0).all()) and bool((new.read_weights == 0).all())
    reads.sum().backward()
    assert bool(torch.isfinite(interface.grad).all())


# --- whole steps ------------------------------------------------------------------------


@pytest.mark.parametrize(("hops", "read_query"), [(1, False), (3, False), (1, True), (3, True)])
def test_full_steps_match_reference(hops: int, read_query: bool) -> None:
    rng = np.random.default_rng(hops)
    key_size = W if hops > 1 or read_query else D
    memory = make(hops=hops, key_size=key_size, read_query=read_query)
    state = random_state(rng, key_size=key_size)
    refs = [
        (
            state.keys[b].tolist(),
            state.values[b].tolist(),
            state.presence[b].tolist(),
            state.queue[b].tolist(),
        )
        for b in range(B)
    ]
    for _ in range(N + 2):  # past a wrap-around
        interface = rng.normal(scale=1.5, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            out = ref_step(list(interface[b]), *refs[b], R, key_size, W, hops, read_query)
            want_reads, keys, values, presence, queue, read_w, write_w = out
            refs[b] = (keys, values, presence, queue)
            np.testing.assert_allclose(reads[b].numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.keys[b].numpy(), keys, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.values[b].numpy(), values, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.presence[b].numpy(), presence, rtol=0, atol=TOL)
            assert state.queue[b].tolist() == queue
            np.testing.assert_allclose(state.read_weights[b].numpy(), read_w, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.write_weights[b, 0].numpy(), write_w, atol=TOL)


def test_gradcheck_full_step() -> None:
    rng = np.random.default_rng(4)
    memory = make(hops=2, key_size=W)
    base = random_state(rng, key_size=W)
    interface = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    floats = [x.clone().requires_grad_() for x in (base.keys, base.values, base.presence)]

    def fn(interface, keys, values, presence):
        state = base._replace(keys=keys, values=values, presence=presence)
        reads, new = memory(interface, state)
        return reads, new.keys, new.values, new.presence, new.read_weights, new.write_weights

    assert torch.autograd.gradcheck(fn, (interface, *floats))


# --- garbage collection contract ----------------------------------------------------------


def test_reorder_slots_keeps_every_later_read() -> None:
    rng = np.random.default_rng(5)
    memory = make()
    state = random_state(rng)
    order = torch.stack([torch.randperm(N) for _ in range(B)])
    moved = memory.reorder_slots(state, order)
    for b in range(B):
        for i in range(N):
            j = int(order[b, i])
            assert torch.equal(moved.keys[b, i], state.keys[b, j])
            assert torch.equal(moved.values[b, i], state.values[b, j])
            assert int(moved.queue[b, i]) == int(state.queue[b, j])
            assert float(moved.presence[b, i]) == float(state.presence[b, j])
            assert torch.equal(moved.read_weights[b, :, i], state.read_weights[b, :, j])
    for _ in range(N + 1):  # the ring order survives: every later step reads the same
        interface = t(rng.normal(size=(B, memory.interface_size)))
        reads, state = memory(interface, state)
        reads_moved, moved = memory(interface, moved)
        torch.testing.assert_close(reads_moved, reads, rtol=0, atol=1e-12)
        torch.testing.assert_close(moved, memory.reorder_slots(state, order), rtol=0, atol=1e-12)


def test_clear_slots_by_hand() -> None:
    # Queue (2, 0, 4, 1, 3): slot 1 is next. Clearing slots 2 and 4 puts them first, in
    # their queue order (slot 4 before slot 2), then slots 1, 3, 0: queue (4, 2, 1, 3, 0).
    memory = make(slots=5)
    rng = np.random.default_rng(6)
    state = KVState(
        keys=t(rng.normal(size=(1, 5, D))),
        values=t(rng.normal(size=(1, 5, W))),
        presence=t([[0.9, 0.8, 0.7, 0.6, 0.5]]),
        queue=torch.tensor([[2, 0, 4, 1, 3]]),
        read_weights=torch.full((1, R, 5), 0.2, dtype=torch.float64),
        write_weights=t([[[0, 0, 0, 0, 0.5]]]),
    )
    cleared = memory.clear_slots(state, torch.tensor([[False, False, True, False, True]]))
    assert cleared.queue.tolist() == [[4, 2, 1, 3, 0]]
    np.testing.assert_array_equal(cleared.presence.numpy(), [[0.9, 0.8, 0, 0.6, 0]])
    for tensor in (cleared.keys, cleared.values):
        assert bool((tensor[0, [2, 4]] == 0).all())
        assert bool((tensor[0, [0, 1, 3]] != 0).all())
    assert bool((cleared.read_weights[0, :, [2, 4]] == 0).all())
    assert bool((cleared.write_weights == 0).all())
    # The next two writes fill slot 4, then slot 2.
    slots = []
    for _ in range(2):
        _, cleared = memory(torch.randn(1, memory.interface_size, dtype=torch.float64), cleared)
        slots.append(int(cleared.write_weights[0, 0].argmax()))
    assert slots == [4, 2]


def test_slot_usage_and_collect_garbage() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(2):
        _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    torch.testing.assert_close(memory.slot_usage(state), state.presence, rtol=0, atol=0)
    new, live = collect_garbage(memory, state, threshold=EPS)
    assert live.tolist() == [2, 2]
    torch.testing.assert_close(new, state, rtol=0, atol=0)  # already compact


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert set(seen) == {"read_weights", "write_weights", "usage", "memory", "keys"}
    assert seen["read_weights"].shape == (B, R, N) and seen["write_weights"].shape == (B, 1, N)
    assert seen["usage"].shape == (B, N)
    torch.testing.assert_close(seen["memory"], state.values, rtol=0, atol=0)
    torch.testing.assert_close(seen["keys"], state.keys, rtol=0, atol=0)


def test_float32_long_run_stays_finite() -> None:
    torch.manual_seed(7)
    memory = KVMemory(KVMemory.Config(slots=16, width=8, key_size=8, hops=2))
    state = memory.initial_state(4, torch.device("cpu"), torch.float32)
    for step in range(300):
        interface = (torch.randn(4, memory.interface_size) * 3).requires_grad_()
        reads, state = memory(interface, state)
        if step % 50 == 49:
            state = detach_state(state)
    assert all(bool(torch.isfinite(x).all()) for x in state if x.is_floating_point())
    reads.sum().backward()
    assert bool(torch.isfinite(interface.grad).all())


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["kv"] is KVMemory
