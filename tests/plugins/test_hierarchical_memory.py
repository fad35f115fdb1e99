"""The hierarchical memory against a float64 reference written from its documented equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import detach_state
from nma_plugins.memories import HierarchicalMemory, nma_register_memories
from nma_plugins.memories.hierarchical import HierarchicalState

B, W, R = 2, 3, 2  # batch, width, read heads
L, SLOTS, GROWTH, PERIOD = 3, 2, 2, 2  # levels of 2, 4 and 8 slots, periods 1, 2, 4
SIZES = [2, 4, 8]
S = sum(SIZES)
TOL = 1e-10
EPS = 1e-6


# --- independent reference (plain Python floats, from the module docstring) -----------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def softmax(xs: list[float]) -> list[float]:
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]


def content(key: list[float], beta: float, memory: list[list[float]]) -> list[float]:
    """NTM eqs. 5-6."""

    def cosine(u, v):
        dot = sum(a * b for a, b in zip(u, v, strict=True))
        return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + EPS)

    return softmax([beta * cosine(key, row) for row in memory])


def ref_step(interface, levels, buffer, step, period=PERIOD):
    """One step for one batch element.

    interface (interface_size,), levels: L memories (N_l, W), buffer (L-1, W), step: the
    counter before the step. Returns a dict of every output, as nested lists.
    """
    n_levels = len(levels)
    pos = 0

    def take(n):
        nonlocal pos
        pos += n
        return list(interface[pos - n : pos])

    write_key, write_beta = take(W), softplus(take(1)[0])
    erase = [sigmoid(x) for x in take(W)]
    add = [math.tanh(x) for x in take(W)]
    write_logits = take(n_levels)
    gates = [sigmoid(x) for x in take(n_levels - 1)]
    cons_betas = [softplus(x) for x in take(n_levels - 1)]
    heads = [(take(W), softplus(take(1)[0]), take(n_levels)) for _ in range(R)]
    assert pos == len(interface)

    step += 1
    due = [1.0 if step % period**level == 0 else 0.0 for level in range(n_levels)]
    # rho: the softmax over the due levels only.
    top = max(z for z, d in zip(write_logits, due, strict=True) if d)
    exps = [math.exp(z - top) if d else 0.0 for z, d in zip(write_logits, due, strict=True)]
    rho = [e / sum(exps) for e in exps]

    new_levels, direct, consolidation, new_buffer = [], [], [], []
    pending = [0.0] * W
    for level, mem in enumerate(levels):
        n = len(mem)
        w_direct = [rho[level] * c for c in content(write_key, write_beta, mem)]
        if level == 0:
            w_cons, summary = [0.0] * n, [0.0] * W
        else:
            summary = pending
            weights = content(summary, cons_betas[level - 1], mem)
            w_cons = [due[level] * gates[level - 1] * c for c in weights]
        new_mem, evicted = [], [0.0] * W
        for i in range(n):
            row = []
            for j in range(W):
                keep = (1 - w_direct[i] * erase[j]) * (1 - w_cons[i])
                row.append(mem[i][j] * keep + w_direct[i] * add[j] + w_cons[i] * summary[j])
                evicted[j] += mem[i][j] * (1 - keep)
            new_mem.append(row)
        new_levels.append(new_mem)
        direct.append(w_direct)
        consolidation.append(w_cons)
        if level < n_levels - 1:
            pending = [buffer[level][j] + evicted[j] / period for j in range(W)]
            new_buffer.append([(1 - due[level + 1]) * p for p in pending])

    reads, read_weights, read_routing = [], [], []
    for key, beta, logits in heads:
        pi = softmax(logits)
        per_level = [content(key, beta, mem) for mem in new_levels]
        read = [
            sum(
                pi[level] * v[i] * new_levels[level][i][j]
                for level, v in enumerate(per_level)
                for i in range(len(v))
            )
            for j in range(W)
        ]
        reads += read
        read_weights.append([x for v in per_level for x in v])
        read_routing.append(pi)
    return {
        "reads": reads,
        "levels": new_levels,
        "buffer": new_buffer,
        "step": step,
        "write_routing": rho,
        "write_weights": [[x for w in direct for x in w], [x for w in consolidation for x in w]],
        "read_weights": read_weights,
        "read_routing": read_routing,
    }


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def make(**overrides) -> HierarchicalMemory:
    config = HierarchicalMemory.Config(
        **{
            "levels": L,
            "slots": SLOTS,
            "growth": GROWTH,
            "period": PERIOD,
            "width": W,
            "read_heads": R,
            **overrides,
        }
    )
    return HierarchicalMemory(config).double()


def random_state(memory: HierarchicalMemory, rng: np.random.Generator, step: int = 0):
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    return state._replace(
        memory=t(rng.normal(size=(B, memory.slots, W))),
        buffer=t(rng.normal(scale=0.5, size=(B, memory.levels - 1, W))),
        step=torch.full((B,), step, dtype=torch.int64),
    )


def split_levels(memory: np.ndarray, sizes=SIZES) -> list[list[list[float]]]:
    out, start = [], 0
    for n in sizes:
        out.append(memory[start : start + n].tolist())
        start += n
    return out


# --- sizes, options and the initial state ---------------------------------------------------


def test_sizes_and_options() -> None:
    memory = make()
    assert memory.level_slots == SIZES and memory.slots == S
    assert memory.offsets == [0, 2, 6]
    assert memory.periods.tolist() == [1, 2, 4]
    assert memory.interface_size == (3 * W + 1 + L) + 2 * (L - 1) + R * (W + 1 + L) == 31
    assert memory.read_size == R * W
    assert HierarchicalMemory.default_addressing is None
    one = make(levels=1)
    assert one.interface_size == 3 * W + 2 + R * (W + 2)
    config = HierarchicalMemory.Config()
    assert (config.levels, config.slots, config.growth, config.period) == (3, 16, 2, 4)
    assert (config.width, config.read_heads) == (20, 1)
    for bad in (
        {"levels": 0},
        {"levels": 9},
        {"slots": 0},
        {"growth": 0},
        {"period": 0},
        {"period": 65},
        {"width": 0},
        {"read_heads": 0},
        {"eps": 0},
        {"write_heads": 2},
    ):
        with pytest.raises(ValidationError):
            HierarchicalMemory.Config(**bad)
    for field in HierarchicalMemory.Config.model_fields.values():
        assert field.description
    with pytest.raises(ValueError, match="addressing"):
        HierarchicalMemory(HierarchicalMemory.Config(), lambda width, heads: None)


def test_initial_state() -> None:
    torch.manual_seed(0)
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    assert isinstance(state, HierarchicalState)
    assert state.memory.shape == (B, S, W) and state.memory.dtype == torch.float32
    assert state.read_weights.shape == (B, R, S)
    assert state.read_routing.shape == (B, R, L)
    assert state.write_weights.shape == (B, 2, S)
    assert state.write_routing.shape == (B, L)
    assert state.buffer.shape == (B, L - 1, W)
    assert state.step.tolist() == [0] * B and state.step.dtype == torch.int64
    for b in range(B):
        torch.testing.assert_close(state.memory[b], memory.memory_init.float())
    for level, n in enumerate(SIZES):
        start = memory.offsets[level]
        block = memory.memory_init.detach()[start : start + n]
        assert float(block.abs().max()) <= 1 / math.sqrt(n + W)
        torch.testing.assert_close(
            state.read_weights[..., start : start + n].sum(-1), torch.ones(B, R)
        )
    assert not bool(state.buffer.any()) and not bool(state.write_weights.any())


def test_initial_memory_is_learned() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    interface = t(np.random.default_rng(0).normal(size=(B, memory.interface_size)))
    reads, _ = memory(interface, state)
    reads.sum().backward()
    assert memory.memory_init.grad is not None
    for start, n in zip(memory.offsets, SIZES, strict=True):
        assert float(memory.memory_init.grad[start : start + n].abs().sum()) > 0


# --- the equations -----------------------------------------------------------------------------


@pytest.mark.parametrize(("levels", "period"), [(3, 2), (2, 3), (1, 2), (3, 1)])
def test_steps_match_reference(levels: int, period: int) -> None:
    rng = np.random.default_rng(1)
    memory = make(levels=levels, period=period)
    sizes = SIZES[:levels]
    state = random_state(memory, rng)
    refs = [
        (split_levels(state.memory[b].numpy(), sizes), state.buffer[b].tolist(), 0)
        for b in range(B)
    ]
    for _ in range(8):  # steps 1..8: every level is due at least twice (except period 3)
        interface = rng.normal(scale=1.5, size=(B, memory.interface_size))
        reads, state = memory(t(interface), state)
        for b in range(B):
            want = ref_step(list(interface[b]), *refs[b], period=period)
            refs[b] = (want["levels"], want["buffer"], want["step"])
            np.testing.assert_allclose(reads[b].numpy(), want["reads"], rtol=0, atol=TOL)
            got_levels = split_levels(state.memory[b].numpy(), sizes)
            for got, ref in zip(got_levels, want["levels"], strict=True):
                np.testing.assert_allclose(got, ref, rtol=0, atol=TOL)
            if levels > 1:
                np.testing.assert_allclose(state.buffer[b], want["buffer"], rtol=0, atol=TOL)
            assert int(state.step[b]) == want["step"]
            for name in ("write_routing", "write_weights", "read_weights", "read_routing"):
                got = getattr(state, name)[b].numpy()
                np.testing.assert_allclose(got, want[name], rtol=0, atol=TOL, err_msg=name)


def test_period_rule_levels_not_due_do_not_change() -> None:
    rng = np.random.default_rng(2)
    memory = make()
    state = random_state(memory, rng)
    for step in range(1, 9):
        old = state
        _, state = memory(t(rng.normal(size=(B, memory.interface_size))), state)
        for level, (start, n) in enumerate(zip(memory.offsets, SIZES, strict=True)):
            due = step % PERIOD**level == 0
            before, after = old.memory[:, start : start + n], state.memory[:, start : start + n]
            written = state.write_weights[..., start : start + n]
            assert torch.equal(before, after) is not due, (step, level)
            assert bool((written == 0).all()) is not due, (step, level)
            assert (float(state.write_routing[0, level]) > 0) is due
        # A buffer is emptied when the level above consumes it, takes in what its level
        # evicts when that level is due, and is left alone otherwise.
        for level in range(L - 1):
            buffer, before = state.buffer[:, level], old.buffer[:, level]
            if step % PERIOD ** (level + 1) == 0:
                assert not bool(buffer.any()), (step, level)
            elif step % PERIOD**level == 0:
                assert not torch.equal(buffer, before), (step, level)
            else:
                assert torch.equal(buffer, before), (step, level)


def test_write_routing_by_hand() -> None:
    # Logits (1, 2, 3): at step 1 only level 0 is due, so it takes the whole write; at
    # step 2 levels 0 and 1 share it as softmax(1, 2); at step 4 all three do.
    memory = make()
    state = random_state(memory, np.random.default_rng(3))
    interface = torch.zeros(B, memory.interface_size, dtype=torch.float64)
    interface[:, 3 * W + 1 : 3 * W + 1 + L] = t([1.0, 2.0, 3.0])
    routing = []
    for _ in range(4):
        _, state = memory(interface, state)
        routing.append(state.write_routing[0].tolist())
    e1, e2, e3 = math.e, math.e**2, math.e**3
    want = [
        [1.0, 0.0, 0.0],
        [e1 / (e1 + e2), e2 / (e1 + e2), 0.0],
        [1.0, 0.0, 0.0],
        [e1 / (e1 + e2 + e3), e2 / (e1 + e2 + e3), e3 / (e1 + e2 + e3)],
    ]
    np.testing.assert_allclose(routing, want, rtol=0, atol=TOL)


def test_no_erase_no_consolidation_by_hand() -> None:
    # Erase 0 and consolidation gates 0: a due level only adds, M' = M + w a^T; nothing
    # is evicted, so the buffers keep their values until the level above is due.
    memory = make(levels=2, period=3)
    rng = np.random.default_rng(4)
    state = random_state(memory, rng)
    interface = t(rng.normal(size=(B, memory.interface_size)))
    interface[:, W + 1 : 2 * W + 1] = -800.0  # sigmoid -> exactly 0
    interface[:, 3 * W + 1 + 2] = -800.0  # consolidation gate of level 0 -> level 1
    buffer = state.buffer.clone()
    for step in (1, 2, 3):
        old = state.memory.clone()
        _, state = memory(interface, state)
        add = torch.tanh(interface[:, 2 * W + 1 : 3 * W + 1])
        want = old + state.write_weights[:, 0].unsqueeze(-1) * add.unsqueeze(1)
        torch.testing.assert_close(state.memory, want, rtol=0, atol=TOL)
        if step < 3:
            torch.testing.assert_close(state.buffer, buffer, rtol=0, atol=0)
        else:
            assert not bool(state.buffer.any())
        assert not bool(state.write_weights[:, 1].any())


def test_weights_are_distributions() -> None:
    torch.manual_seed(5)
    memory = make().requires_grad_(False)
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    for _ in range(5):
        _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
        seen = memory.inspect(state)
        ones = torch.ones(B, R, dtype=torch.float64)
        torch.testing.assert_close(seen["read_weights"].sum(-1), ones)
        torch.testing.assert_close(seen["read_routing"].sum(-1), ones)
        torch.testing.assert_close(seen["write_routing"].sum(-1), ones[:, 0])
        torch.testing.assert_close(seen["write_weights"][:, 0].sum(-1), ones[:, 0])
        assert bool((seen["write_weights"] >= 0).all())
        assert float(seen["write_weights"][:, 1].sum(-1).max()) <= (L - 1) + 1e-12


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    assert memory.inspect(state)["due"].tolist() == [[0.0] * L] * B
    for _ in range(2):
        _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    shapes = {
        "read_weights": (B, R, S),
        "write_weights": (B, 2, S),
        "memory": (B, S, W),
        "read_routing": (B, R, L),
        "write_routing": (B, L),
        "due": (B, L),
        "buffer": (B, L - 1, W),
    }
    for level, n in enumerate(SIZES):
        shapes[f"level{level}_read_weights"] = (B, R, n)
        shapes[f"level{level}_write_weights"] = (B, 2, n)
        shapes[f"level{level}_memory"] = (B, n, W)
    assert {name: tuple(x.shape) for name, x in seen.items()} == shapes
    assert seen["due"].tolist() == [[1.0, 1.0, 0.0]] * B  # step 2
    torch.testing.assert_close(seen["level1_memory"], state.memory[:, 2:6], rtol=0, atol=0)
    torch.testing.assert_close(
        seen["read_weights"][..., 2:6],
        state.read_routing[..., 1:2] * seen["level1_read_weights"],
        rtol=0,
        atol=0,
    )


@pytest.mark.parametrize("step", [0, 3])  # the next step: level 0 only / every level
def test_gradcheck_full_step(step: int) -> None:
    rng = np.random.default_rng(6)
    memory = make()
    base = random_state(memory, rng, step=step)
    base = type(base)(*(x[:1] for x in base))  # one batch element keeps it fast
    interface = t(rng.normal(size=(1, memory.interface_size))).requires_grad_()
    mem = base.memory.clone().requires_grad_()
    buffer = base.buffer.clone().requires_grad_()

    def fn(interface: torch.Tensor, mem: torch.Tensor, buffer: torch.Tensor):
        reads, state = memory(interface, base._replace(memory=mem, buffer=buffer))
        return reads, state.memory, state.buffer, state.read_weights, state.write_weights

    assert torch.autograd.gradcheck(fn, (interface, mem, buffer))


def test_long_float32_run_stays_finite() -> None:
    torch.manual_seed(7)
    memory = HierarchicalMemory(HierarchicalMemory.Config(slots=4, width=8))
    state = memory.initial_state(8, torch.device("cpu"), torch.float32)
    for step in range(200):
        reads, state = memory(torch.randn(8, memory.interface_size) * 3, state)
        if step % 50 == 0:
            state = detach_state(state)
    assert bool(torch.isfinite(reads).all()) and bool(torch.isfinite(state.memory).all())
    assert bool(torch.isfinite(state.buffer).all())


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["hierarchical"] is HierarchicalMemory
