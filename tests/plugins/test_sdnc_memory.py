"""The sparse DNC memory against a dense float64 reference written as loops.

The reference keeps every quantity dense and applies each truncation ("keep the K
largest") explicitly, so it checks both the untruncated equations (``K = K_L = N``,
where the SDNC is exactly a DNC with SAM's write) and the truncated ones.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import Addressing
from nma_plugins.addressing import ContentAddressing
from nma_plugins.memories import nma_register_memories
from nma_plugins.memories.sdnc import SparseDNCMemory, SparseDNCState
from nma_plugins.memories.sdnc_sparse import densify

B, N, W, R = 2, 6, 3, 2  # batch, slots, width, read heads
TOL = 1e-10
CONTENT_EPS = 1e-6
DECAY, THRESHOLD = 0.9, 0.005


# --- independent reference (plain Python floats) -------------------------------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def oneplus(x: float) -> float:
    return 1 + math.log1p(math.exp(x))


def softmax(xs):
    top = max(xs)
    exps = [math.exp(x - top) for x in xs]
    return [e / sum(exps) for e in exps]


def top(row, k):
    """Keep the k largest entries (the others become 0)."""
    keep = sorted(range(len(row)), key=lambda i: -row[i])[:k]
    return [row[i] if i in keep else 0.0 for i in range(len(row))]


def ref_content(memory, key, beta):
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

    keys, betas = [], []
    for _ in range(R):
        keys.append(take(W))
        betas.append(oneplus(take(1)[0]))
    erase = [sigmoid(x) for x in take(W)]
    values = take(W)
    gamma = sigmoid(take(1)[0])
    alpha = sigmoid(take(1)[0])
    modes = [softmax(take(3)) for _ in range(R)]
    assert pos == len(xi)
    return keys, betas, erase, values, gamma, alpha, modes


def ref_step(xi, st, k, kl):
    """One SDNC step for one batch element, everything dense. Returns reads, new state."""
    keys, betas, erase, values, gamma, alpha, modes = ref_parse(xi)
    n = len(st["memory"])
    rw = st["read"]
    # Write weighting: previous reads (mean over heads) or the least used slot.
    lru = min(range(n), key=lambda i: (st["usage"][i], i))
    w = [
        alpha * (gamma * sum(rw[h][i] for h in range(R)) / R + (1 - gamma) * (i == lru))
        for i in range(n)
    ]
    w = top(w, k)
    # Memory: clear the least used row, then erase and add.
    mem = [list(row) for row in st["memory"]]
    mem[lru] = [0.0] * W
    mem = [
        [mem[i][j] * (1 - w[i] * erase[j]) + w[i] * values[j] for j in range(W)] for i in range(n)
    ]
    # Links (L by rows, T = L^T by rows, each truncated per row) and precedence.
    p = st["p"]
    link = [
        top(
            [0.0 if i == j else (1 - w[i] - w[j]) * st["L"][i][j] + w[i] * p[j] for j in range(n)],
            kl,
        )
        for i in range(n)
    ]
    link_t = [
        top(
            [0.0 if i == j else (1 - w[i] - w[j]) * st["T"][j][i] + w[i] * p[j] for i in range(n)],
            kl,
        )
        for j in range(n)
    ]
    new_p = top([(1 - sum(w)) * p[i] + w[i] for i in range(n)], kl)
    # Reads.
    new_rw, reads = [], []
    for h in range(R):
        forward = [sum(link_t[j][i] * rw[h][j] for j in range(n)) for i in range(n)]
        backward = [sum(link[i][j] * rw[h][i] for i in range(n)) for j in range(n)]
        content = top(ref_content(mem, keys[h], betas[h]), k)
        content = [c / sum(content) for c in content]
        mixed = [
            modes[h][0] * backward[i] + modes[h][1] * content[i] + modes[h][2] * forward[i]
            for i in range(n)
        ]
        weights = top(mixed, k)
        new_rw.append(weights)
        reads += [sum(weights[i] * mem[i][j] for i in range(n)) for j in range(W)]
    access = [w[i] + sum(new_rw[h][i] for h in range(R)) for i in range(n)]
    usage = [1.0 if access[i] > THRESHOLD else DECAY * st["usage"][i] for i in range(n)]
    return reads, {
        "memory": mem,
        "usage": usage,
        "L": link,
        "T": link_t,
        "p": new_p,
        "read": new_rw,
        "write": w,
    }


# --- helpers ------------------------------------------------------------------------------


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def content_factory(width: int, heads: int) -> Addressing:
    return ContentAddressing(ContentAddressing.Config(eps=CONTENT_EPS), width, heads)


def make(**overrides) -> SparseDNCMemory:
    options = {
        "slots": N,
        "width": W,
        "read_heads": R,
        "sparse_reads": 2,
        "link_entries": 2,
        "usage_decay": DECAY,
        "access_threshold": THRESHOLD,
        **overrides,
    }
    return SparseDNCMemory(SparseDNCMemory.Config(**options), content_factory).double()


def dense_rows(indices: torch.Tensor, values: torch.Tensor) -> list:
    n = indices.shape[0]
    out = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j, v in zip(indices[i].tolist(), values[i].tolist(), strict=True):
            out[i][j] += v
    return out


def as_reference(state: SparseDNCState, b: int) -> dict:
    n = state.memory.shape[1]
    return {
        "memory": state.memory[b].tolist(),
        "usage": state.usage[b].tolist(),
        "L": dense_rows(state.link_indices[b], state.link_values[b]),
        "T": dense_rows(state.link_t_indices[b], state.link_t_values[b]),
        "p": densify(state.precedence_indices[b], state.precedence_values[b], n).tolist(),
        "read": densify(state.read_indices[b], state.read_values[b], n).tolist(),
        "write": densify(state.write_indices[b, 0], state.write_values[b, 0], n).tolist(),
    }


def assert_matches(state: SparseDNCState, ref: dict, b: int) -> None:
    got = as_reference(state, b)
    for name in ("memory", "usage", "L", "T", "p", "read", "write"):
        np.testing.assert_allclose(got[name], ref[name], rtol=0, atol=TOL, err_msg=name)


def random_start(memory: SparseDNCMemory, rng: np.random.Generator) -> SparseDNCState:
    """The initial state with random (distinct, non-zero) memory rows: no ties in lookups."""
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    return state._replace(memory=t(rng.normal(size=state.memory.shape)))


def check_against_reference(memory: SparseDNCMemory, steps: int, seed: int) -> SparseDNCState:
    rng = np.random.default_rng(seed)
    k, kl = memory.config.sparse_reads, memory.config.link_entries
    state = random_start(memory, rng)
    refs = [as_reference(state, b) for b in range(B)]
    for _ in range(steps):
        xi = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(xi), state)
        for b in range(B):
            want, refs[b] = ref_step(list(xi[b]), refs[b], k, kl)
            np.testing.assert_allclose(reads[b].numpy(), want, rtol=0, atol=TOL)
            assert_matches(state, refs[b], b)
    return state


# --- sizes, options and the initial state --------------------------------------------------


def test_sizes() -> None:
    memory = make()
    assert memory.interface_size == R * (W + 1) + 2 * W + 3 * R + 2 == 22
    assert memory.read_size == R * W
    assert SparseDNCMemory.default_addressing == "content"


def test_needs_an_addressing() -> None:
    with pytest.raises(ValueError, match="addressing"):
        SparseDNCMemory(SparseDNCMemory.Config(), None)


def test_config_limits() -> None:
    config = SparseDNCMemory.Config()
    assert (config.slots, config.width, config.read_heads, config.write_heads) == (1024, 20, 2, 1)
    assert (config.sparse_reads, config.link_entries) == (4, 8)
    for name in ("slots", "width", "read_heads", "write_heads", "sparse_reads", "link_entries"):
        with pytest.raises(ValidationError):
            SparseDNCMemory.Config(**{name: 0})
    for name, field in SparseDNCMemory.Config.model_fields.items():
        assert field.description, name
    for bad in ({"write_heads": 2}, {"usage_decay": 1.0}, {"eps": 0.0}, {"rows": 3}):
        with pytest.raises(ValidationError):
            SparseDNCMemory.Config(**bad)
    with pytest.raises(ValidationError, match="sparse_reads"):
        SparseDNCMemory.Config(slots=4, sparse_reads=5, link_entries=2)
    with pytest.raises(ValidationError, match="link_entries"):
        SparseDNCMemory.Config(slots=4, sparse_reads=2, link_entries=5)


def test_initial_state() -> None:
    memory = make(sparse_reads=3, link_entries=4)
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    shapes = {
        "memory": (B, N, W),
        "usage": (B, N),
        "link_indices": (B, N, 4),
        "link_values": (B, N, 4),
        "link_t_indices": (B, N, 4),
        "link_t_values": (B, N, 4),
        "precedence_indices": (B, 4),
        "precedence_values": (B, 4),
        "read_indices": (B, R, 3),
        "read_values": (B, R, 3),
        "write_indices": (B, 1, 3),
        "write_values": (B, 1, 3),
    }
    for name, shape in shapes.items():
        value = getattr(state, name)
        assert value.shape == shape, name
        if name.endswith("indices"):
            assert value.dtype == torch.int64, name
        else:
            assert value.dtype == torch.float32 and bool((value == 0).all()), name
    assert state.read_indices[1, 1].tolist() == [0, 1, 2]


def test_split_interface_layout() -> None:
    rng = np.random.default_rng(0)
    memory = make()
    xi = rng.normal(size=(B, memory.interface_size))
    parts = memory.split_interface(t(xi))
    for b in range(B):
        keys, betas, erase, values, gamma, alpha, modes = ref_parse(list(xi[b]))
        np.testing.assert_allclose(parts.read_params["key"][b].numpy(), keys, atol=TOL)
        np.testing.assert_allclose(parts.read_params["strength"][b, :, 0].numpy(), betas, atol=TOL)
        np.testing.assert_allclose(parts.erase[b].numpy(), erase, atol=TOL)
        np.testing.assert_allclose(parts.write_vector[b].numpy(), values, atol=TOL)
        assert math.isclose(float(parts.interpolation_gate[b, 0]), gamma, abs_tol=TOL)
        assert math.isclose(float(parts.write_gate[b, 0]), alpha, abs_tol=TOL)
        np.testing.assert_allclose(parts.read_modes[b].numpy(), modes, atol=TOL)


# --- whole steps against the dense reference -----------------------------------------------


def test_untruncated_steps_match_the_dense_reference() -> None:
    # K = K_L = N: no truncation anywhere; the SDNC is a DNC with SAM's write.
    state = check_against_reference(make(sparse_reads=N, link_entries=N), steps=6, seed=1)
    assert float(state.link_values.abs().sum()) > 0.1


def test_truncated_steps_match_the_dense_reference() -> None:
    state = check_against_reference(make(sparse_reads=2, link_entries=2), steps=8, seed=2)
    assert float(state.link_values.abs().sum()) > 0.1


def test_write_goes_to_the_least_used_slot_by_hand() -> None:
    # gamma -> 0, alpha -> 1: the whole write goes to the least used slot (slot 2 here),
    # which is cleared first, so it then holds exactly the write vector.
    memory = make()
    state = random_start(memory, np.random.default_rng(3))
    state = state._replace(usage=t([[0.5, 0.4, 0.0, 0.7, 0.9, 0.8]] * B))
    xi = np.zeros((B, memory.interface_size))
    base = R * (W + 1)
    xi[:, base : base + W] = 60.0  # erase everything on the written slot
    xi[:, base + W : base + 2 * W] = [0.5, -1.0, 2.0]
    xi[:, base + 2 * W] = -60.0  # gamma ~ 0
    xi[:, base + 2 * W + 1] = 60.0  # alpha ~ 1
    _, new = memory(t(xi), state)
    for b in range(B):
        np.testing.assert_allclose(new.memory[b, 2].numpy(), [0.5, -1.0, 2.0], atol=1e-9)
        write = densify(new.write_indices[b, 0], new.write_values[b, 0], N)
        np.testing.assert_allclose(write.numpy(), np.eye(N)[2], atol=1e-9)
        assert float(new.usage[b, 2]) == 1.0
        others = [0, 1, 3, 4, 5]
        np.testing.assert_allclose(new.memory[b, others].numpy(), state.memory[b, others].numpy())


def test_sparsity_invariants_over_steps() -> None:
    torch.manual_seed(4)
    k, kl, n = 3, 2, 10
    memory = make(slots=n, sparse_reads=k, link_entries=kl).float()
    state = memory.initial_state(B, torch.device("cpu"), torch.float32)
    for _ in range(25):
        reads, state = memory(torch.randn(B, memory.interface_size) * 3, state)
        assert bool(torch.isfinite(reads).all())
        for name in ("read", "write", "precedence"):
            idx, val = getattr(state, f"{name}_indices"), getattr(state, f"{name}_values")
            assert int((val != 0).sum(-1).max()) <= idx.shape[-1]
            assert bool((val >= 0).all()) and bool((val.sum(-1) <= 1 + 1e-5).all())
            flat = idx.reshape(-1, idx.shape[-1])
            assert all(len(set(row.tolist())) == idx.shape[-1] for row in flat)  # distinct
        assert state.read_values.shape[-1] == k and state.write_values.shape[-1] == k
        rows = torch.arange(n).view(1, n, 1)
        for idx, val in (
            (state.link_indices, state.link_values),
            (state.link_t_indices, state.link_t_values),
        ):
            assert idx.shape == (B, n, kl)
            assert bool((val >= 0).all()) and bool((val.sum(-1) <= 1 + 1e-5).all())
            assert int(((val != 0) & (idx == rows)).sum()) == 0  # zero diagonal
        assert bool((state.usage >= 0).all()) and bool((state.usage <= 1).all())


def test_inspect() -> None:
    memory = make()
    state = memory.initial_state(B, torch.device("cpu"), torch.float64)
    _, state = memory(torch.randn(B, memory.interface_size, dtype=torch.float64), state)
    seen = memory.inspect(state)
    assert set(seen) == {"read_weights", "write_weights", "usage", "memory", "precedence"}
    assert seen["read_weights"].shape == (B, R, N)
    assert seen["write_weights"].shape == (B, 1, N)
    assert seen["usage"].shape == (B, N) and seen["precedence"].shape == (B, N)
    assert seen["memory"].shape == (B, N, W)
    torch.testing.assert_close(
        seen["read_weights"].sum(-1), state.read_values.sum(-1), rtol=0, atol=1e-12
    )


def random_state(memory: SparseDNCMemory, rng: np.random.Generator) -> SparseDNCState:
    """A state with distinct indices and positive values everywhere (no kinks at 0)."""
    n, k, kl = memory.slots, memory.k, memory.link_entries

    def distinct(count: int, *shape: int, exclude: int | None = None) -> torch.Tensor:
        pool = [j for j in range(n) if j != exclude]
        rows = [rng.permutation(pool)[:count] for _ in range(math.prod(shape))]
        return torch.tensor(np.array(rows)).reshape(*shape, count)

    def link_table() -> torch.Tensor:
        return torch.stack(
            [torch.stack([distinct(kl, exclude=i) for i in range(n)]) for _ in range(B)]
        )

    return SparseDNCState(
        memory=t(rng.normal(size=(B, n, W))),
        usage=t(rng.uniform(0.05, 0.95, size=(B, n))),
        link_indices=link_table(),
        link_values=t(rng.uniform(0.05, 1.0, size=(B, n, kl)) / kl),
        link_t_indices=link_table(),
        link_t_values=t(rng.uniform(0.05, 1.0, size=(B, n, kl)) / kl),
        precedence_indices=distinct(kl, B),
        precedence_values=t(rng.dirichlet(np.ones(kl), size=B) * 0.9),
        read_indices=distinct(k, B, R),
        read_values=t(rng.dirichlet(np.ones(k), size=(B, R)) * 0.9),
        write_indices=distinct(k, B, 1),
        write_values=t(rng.dirichlet(np.ones(k), size=(B, 1)) * 0.9),
    )


def test_gradcheck_full_step() -> None:
    rng = np.random.default_rng(5)
    memory = make(sparse_reads=2, link_entries=3)
    base = random_state(memory, rng)
    xi = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    names = ("memory", "link_values", "link_t_values", "precedence_values", "read_values")
    inputs = tuple(getattr(base, name).clone().requires_grad_() for name in names)

    def fn(xi, *values):
        reads, new = memory(xi, base._replace(**dict(zip(names, values, strict=True))))
        outputs = ("memory", "link_values", "link_t_values", "precedence_values", "read_values")
        return (reads, *(getattr(new, name) for name in outputs), new.write_values)

    assert torch.autograd.gradcheck(fn, (xi, *inputs))


def test_large_memory_step_forward_backward() -> None:
    # 65,536 slots, batch 1: a step (forward + backward) is cheap, and the whole state
    # is far below a tenth of one dense 65,536 x 65,536 float32 link matrix (17 GB).
    n = 65_536
    memory = SparseDNCMemory(SparseDNCMemory.Config(slots=n, width=8), content_factory)
    state = memory.initial_state(1, torch.device("cpu"), torch.float32)
    xi = torch.randn(1, memory.interface_size, requires_grad=True)
    start = time.perf_counter()
    for _ in range(2):
        reads, state = memory(xi, state)
    reads.sum().backward()
    assert time.perf_counter() - start < 10
    assert xi.grad is not None and bool(torch.isfinite(xi.grad).all())
    total = sum(value.numel() * value.element_size() for value in state)
    assert total < n * n * 4 / 10
    assert state.link_values.shape == (1, n, memory.link_entries)


# --- garbage-collection contract ------------------------------------------------------------


def dense_state(memory: SparseDNCMemory, state: SparseDNCState, b: int) -> dict:
    return as_reference(state, b)


def test_reorder_slots_leaves_the_next_reads_unchanged() -> None:
    rng = np.random.default_rng(6)
    memory = make(slots=8, sparse_reads=3, link_entries=3)
    state = random_start(memory, rng)
    state = state._replace(usage=t(rng.uniform(size=(B, 8))))  # distinct usages
    for _ in range(4):
        _, state = memory(t(rng.normal(scale=2.0, size=(B, memory.interface_size))), state)
    order = torch.stack(
        [torch.randperm(8, generator=torch.Generator().manual_seed(b)) for b in range(B)]
    )
    moved = memory.reorder_slots(state, order)
    for b in range(B):
        before, after = as_reference(state, b), as_reference(moved, b)
        perm = order[b].tolist()
        np.testing.assert_array_equal(np.array(after["memory"]), np.array(before["memory"])[perm])
        np.testing.assert_array_equal(after["usage"], np.array(before["usage"])[perm])
        for name in ("L", "T"):
            np.testing.assert_array_equal(
                np.array(after[name]), np.array(before[name])[np.ix_(perm, perm)]
            )
        np.testing.assert_array_equal(np.array(after["read"]), np.array(before["read"])[:, perm])
        np.testing.assert_array_equal(after["p"], np.array(before["p"])[perm])
        np.testing.assert_array_equal(after["write"], np.array(before["write"])[perm])
    xi = t(rng.normal(scale=2.0, size=(B, memory.interface_size)))
    reads, next_state = memory(xi, state)
    moved_reads, moved_next = memory(xi, moved)
    torch.testing.assert_close(moved_reads, reads, rtol=0, atol=1e-12)
    again = memory.reorder_slots(next_state, order)
    for b in range(B):
        want, got = as_reference(again, b), as_reference(moved_next, b)
        for name in want:
            np.testing.assert_allclose(got[name], want[name], rtol=0, atol=1e-12, err_msg=name)


def test_clear_slots() -> None:
    rng = np.random.default_rng(7)
    memory = make(sparse_reads=3, link_entries=3)
    state = random_state(memory, rng)
    mask = torch.zeros(B, N, dtype=torch.bool)
    mask[0, 1] = True
    mask[1, 3] = mask[1, 4] = True
    cleared = memory.clear_slots(state, mask)
    for b in range(B):
        before, after = as_reference(state, b), as_reference(cleared, b)
        dead = mask[b].tolist()
        for i in range(N):
            row_kept = not dead[i]
            np.testing.assert_array_equal(
                after["memory"][i], before["memory"][i] if row_kept else [0.0] * W
            )
            assert after["usage"][i] == (before["usage"][i] if row_kept else 0.0)
            assert after["p"][i] == (before["p"][i] if row_kept else 0.0)
            assert after["write"][i] == (before["write"][i] if row_kept else 0.0)
            for h in range(R):
                assert after["read"][h][i] == (before["read"][h][i] if row_kept else 0.0)
            for j in range(N):
                keep = row_kept and not dead[j]
                for name in ("L", "T"):
                    assert after[name][i][j] == (before[name][i][j] if keep else 0.0)
    # A cleared slot (usage 0) is the next least used one, and is written.
    xi = torch.zeros(B, memory.interface_size, dtype=torch.float64)
    xi[:, R * (W + 1) + 2 * W] = -60.0  # gamma ~ 0
    xi[:, R * (W + 1) + 2 * W + 1] = 60.0  # alpha ~ 1
    _, new = memory(xi, cleared)
    assert int(new.write_indices[0, 0, 0]) == 1 and int(new.write_indices[1, 0, 0]) == 3


def test_slot_usage() -> None:
    memory = make()
    state = random_state(memory, np.random.default_rng(8))
    assert memory.slot_usage(state) is state.usage


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["sdnc"] is SparseDNCMemory
