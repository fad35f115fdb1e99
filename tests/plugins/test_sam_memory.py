"""The SAM memory (Rae et al. 2016, section 3) against float64 references written from the paper."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nma import Options, detach_state, map_state
from nma_plugins.addressing import ContentAddressing
from nma_plugins.memories import nma_register_memories
from nma_plugins.memories.sam import EXACT_UP_TO, SAMMemory, SAMState

B, N, W, R, K = 2, 9, 3, 2, 3  # batch, slots, width, read heads, sparse reads
E = R * K + 1  # slots a write touches
DELTA = 0.005
TOL = 1e-10
CPU = torch.device("cpu")
F64 = torch.float64


# --- independent reference (plain Python floats, straight from section 3) ---------------------


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def cosine(u, v, eps: float = 1e-6) -> float:
    dot = sum(a * b for a, b in zip(u, v, strict=True))
    return dot / (math.sqrt(sum(a * a for a in u)) * math.sqrt(sum(b * b for b in v)) + eps)


class RefState:
    """One batch element: memory (N, W), last-access steps (N), previous reads, step."""

    def __init__(self, memory, reads: int, k: int) -> None:
        self.memory = [list(row) for row in memory]
        self.times = [-1] * len(memory)
        self.read_idx = [list(range(k)) for _ in range(reads)]
        self.read_w = [[0.0] * k for _ in range(reads)]
        self.step = 0


def ref_step(iface, s: RefState, reads: int, k: int, width: int, delta: float = DELTA):
    """One SAM step for one batch element, parsing the documented interface layout.

    Returns the reads (R * W,) and the dense write weighting (N,); updates ``s``.
    """
    n = len(s.memory)
    keys, betas = [], []
    for r in range(reads):
        block = iface[r * (width + 1) : (r + 1) * (width + 1)]
        keys.append(list(block[:width]))
        betas.append(softplus(block[width]))
    base = reads * (width + 1)
    word = [math.tanh(x) for x in iface[base : base + width]]
    alpha, gamma = sigmoid(iface[base + width]), sigmoid(iface[base + width + 1])

    # Least recently accessed: the oldest last access, lowest index among ties.
    lra = min(range(n), key=lambda i: (s.times[i], i))
    # w^W = alpha [gamma w^R_{t-1} + (1 - gamma) I^U], w^R_{t-1} the mean over heads.
    write = [0.0] * n
    for r in range(reads):
        for j in range(k):
            write[s.read_idx[r][j]] += alpha * gamma * s.read_w[r][j] / reads
    write[lra] += alpha * (1 - gamma)
    # M_t = (1 - I^U 1^T) o M_{t-1} + w^W a^T.
    s.memory = [
        [s.memory[i][c] * (0.0 if i == lra else 1.0) + write[i] * word[c] for c in range(width)]
        for i in range(n)
    ]
    # Sparse read: softmax of beta * cosine over the K most similar slots.
    out, read_idx, read_w = [], [], []
    for r in range(reads):
        sims = [cosine(keys[r], row) for row in s.memory]
        top = sorted(range(n), key=lambda i: -sims[i])[:k]
        exps = [math.exp(betas[r] * sims[i]) for i in top]
        weights = [e / sum(exps) for e in exps]
        read_idx.append(top)
        read_w.append(weights)
        out.extend(sum(weights[j] * s.memory[top[j]][c] for j in range(k)) for c in range(width))
    # Usage: slots whose read + write weight exceeds delta are stamped with the step.
    access = list(write)
    for r in range(reads):
        for j in range(k):
            access[read_idx[r][j]] += read_w[r][j]
    s.times = [s.step if access[i] > delta else s.times[i] for i in range(n)]
    s.read_idx, s.read_w, s.step = read_idx, read_w, s.step + 1
    return out, write


# --- helpers ---------------------------------------------------------------------------------


def make(**overrides) -> SAMMemory:
    config = {"slots": N, "width": W, "read_heads": R, "sparse_reads": K, "index": "exact"}
    return SAMMemory(SAMMemory.Config(**{**config, **overrides})).double()


def start(memory: SAMMemory, contents: np.ndarray) -> SAMState:
    state = memory.initial_state(contents.shape[0], CPU, F64)
    return memory.load_memory(state, torch.tensor(contents))


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=F64)


def raw_interface(alpha: float, gamma: float, word, key, strength: float, reads=1):
    """Raw interface values giving these constrained values (one batch element)."""
    head = list(key) + [math.log(math.expm1(strength))]
    gates = [math.log(alpha / (1 - alpha)), math.log(gamma / (1 - gamma))]
    return head * reads + [math.atanh(x) for x in word] + gates


# --- sizes, options, the initial state ---------------------------------------------------------


def test_sizes() -> None:
    memory = make()
    assert memory.interface_size == R * (W + 1) + W + 2 == 13
    assert memory.read_size == R * W
    assert SAMMemory.default_addressing is None
    default = SAMMemory(SAMMemory.Config())
    assert default.interface_size == 20 + 1 + 20 + 2 and default.read_size == 20
    with pytest.raises(ValueError, match="addressing"):
        SAMMemory(SAMMemory.Config(), lambda w, h: ContentAddressing(Options(), w, h))


def test_config_limits() -> None:
    config = SAMMemory.Config()
    assert (config.slots, config.width, config.read_heads, config.sparse_reads) == (1024, 20, 1, 4)
    assert config.index == "auto"
    for name in ("slots", "width", "read_heads", "sparse_reads", "lsh_tables", "lsh_bucket_size"):
        with pytest.raises(ValidationError):
            SAMMemory.Config(**{name: 0})
    bad = (("index", "kd-tree"), ("eps", 0.0), ("access_threshold", -0.1), ("lsh_seed", -1))
    for name, value in bad:
        with pytest.raises(ValidationError):
            SAMMemory.Config(**{name: value})
    with pytest.raises(ValidationError, match="sparse_reads"):
        SAMMemory.Config(slots=3, sparse_reads=4)
    with pytest.raises(ValidationError):
        SAMMemory.Config(rows=3)
    for field in SAMMemory.Config.model_fields.values():
        assert field.description


def test_index_choice() -> None:
    assert SAMMemory(SAMMemory.Config(slots=EXACT_UP_TO)).index is None
    auto = SAMMemory(SAMMemory.Config(slots=EXACT_UP_TO + 1))
    assert auto.index is not None
    # bits = ceil(log2(N / c)): 8193 / 16 = 512.06 -> 10 bits.
    assert auto.index.bits == 10 and auto.index.tables == 8 and auto.index.probes == 2
    small = SAMMemory(SAMMemory.Config(slots=10, index="lsh", lsh_bucket_size=16, lsh_probes=0))
    assert small.index is not None and small.index.bits == 1
    assert SAMMemory(SAMMemory.Config(slots=10**6, index="exact")).index is None
    assert SAMMemory(SAMMemory.Config(index="lsh", lsh_bits=7)).index.bits == 7
    capped = SAMMemory(SAMMemory.Config(index="lsh", lsh_bits=2, lsh_probes=5)).index
    assert capped is not None and capped.probes == 2


@pytest.mark.parametrize("index", ["exact", "lsh"])
def test_initial_state(index: str) -> None:
    memory = make(index=index)
    state = memory.initial_state(B, CPU, torch.float32)
    assert isinstance(state, SAMState)
    assert state.memory.shape == (B, N, W) and state.memory.dtype == torch.float32
    assert bool((state.memory == 0).all())
    assert state.rows.shape == (B, 0, W) and state.slot_of_row.shape == (B, 0)
    assert bool((state.row_of_slot == -1).all()) and state.row_of_slot.shape == (B, N)
    assert state.times.shape == (B, 9) and bool((state.times == -1).all())  # S = 3, G = 3
    assert state.block_min.shape == (B, 3)
    assert state.step.tolist() == [0] * B
    assert state.read_indices.tolist() == [[[0, 1, 2]] * R] * B
    assert bool((state.read_weights == 0).all()) and state.read_weights.shape == (B, R, K)
    assert state.write_indices.shape == (B, E) and state.write_weights.shape == (B, E)
    if index == "lsh":
        assert state.table.shape[:2] == (B, 8) and state.table.dtype == torch.int32
    else:
        assert state.table.numel() == 0 and state.fill.numel() == 0


# --- hand-worked steps -------------------------------------------------------------------------


def test_first_step_by_hand() -> None:
    # Zero memory, N = 4, K = 2. The least recently accessed slot is 0 and there was no
    # previous read, so w^W = alpha (1 - gamma) = 0.25 on slot 0 (alpha = gamma = 1/2):
    # row 0 = 0.25 a = (0.2, -0.1, 0). The key (2, -1, 0) has cosine 1 with row 0 and
    # 0 with the zero rows; with beta = ln 3 the two kept slots weigh 3/4 and 1/4, so
    # the read is 3/4 row 0 = (0.15, -0.075, 0).
    memory = make(slots=4, read_heads=1, sparse_reads=2)
    state = memory.initial_state(1, CPU, F64)
    iface = raw_interface(0.5, 0.5, [0.8, -0.4, 0.0], [2.0, -1.0, 0.0], math.log(3.0))
    reads, state = memory(t([iface]), state)
    np.testing.assert_allclose(reads[0].detach().numpy(), [0.15, -0.075, 0.0], atol=1e-6)
    want = np.zeros((4, 3))
    want[0] = [0.2, -0.1, 0.0]
    np.testing.assert_allclose(state.memory[0].numpy(), want, rtol=0, atol=TOL)
    assert state.read_indices[0, 0, 0].item() == 0
    other = state.read_indices[0, 0, 1].item()
    assert other in (1, 2, 3)
    np.testing.assert_allclose(state.read_weights[0, 0].detach().numpy(), [0.75, 0.25], atol=1e-6)
    # Slot 0 (written and read) and the other read slot were accessed at step 0.
    stamps = [-1, -1, -1, -1]
    stamps[0] = stamps[other] = 0
    assert state.times[0, :4].tolist() == stamps
    assert state.step.tolist() == [1]


def test_erase_and_write_by_hand() -> None:
    # N = 3, W = 2, K = 1, rows (1, 0), (0, 1), (1, 1); alpha = gamma = 1/2.
    memory = make(slots=3, width=2, read_heads=1, sparse_reads=1)
    state = start(memory, np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]]))
    # Step 0: slot 0 is least recently accessed: erased, then written 0.25 a:
    # row 0 = 0.25 (0.8, -0.4) = (0.2, -0.1). Key (0, 1): slot 1 (cosine 1) is read.
    iface = raw_interface(0.5, 0.5, [0.8, -0.4], [0.0, 1.0], 2.0)
    reads, state = memory(t([iface]), state)
    np.testing.assert_allclose(
        state.memory[0].numpy(), [[0.2, -0.1], [0.0, 1.0], [1.0, 1.0]], rtol=0, atol=TOL
    )
    np.testing.assert_allclose(reads[0].detach().numpy(), [0.0, 1.0], rtol=0, atol=TOL)
    assert state.read_indices.tolist() == [[[1]]] and state.times[0, :3].tolist() == [0, 0, -1]
    # Step 1: slot 2 is now least recently accessed. w^W = 0.25 on the previous read
    # slot 1 and 0.25 on slot 2 (erased first). With a = (0.4, 0.4): row 1 = (0.1, 1.1),
    # row 2 = (0.1, 0.1). Key (1, 0): cosines 0.894, 0.090, 0.707 -> slot 0 is read.
    iface = raw_interface(0.5, 0.5, [0.4, 0.4], [1.0, 0.0], 2.0)
    reads, state = memory(t([iface]), state)
    np.testing.assert_allclose(
        state.memory[0].numpy(), [[0.2, -0.1], [0.1, 1.1], [0.1, 0.1]], rtol=0, atol=TOL
    )
    np.testing.assert_allclose(reads[0].detach().numpy(), [0.2, -0.1], rtol=0, atol=TOL)
    assert state.write_indices.tolist() == [[1, 2]]
    np.testing.assert_allclose(state.write_weights.detach().numpy(), [[0.25, 0.25]], atol=TOL)
    assert state.times[0, :3].tolist() == [1, 1, 1]


# --- whole sequences against the reference ---------------------------------------------------


@pytest.mark.parametrize(
    "index_options",
    [
        {"index": "exact"},
        # One bit, both buckets probed, buckets larger than everything inserted: the
        # index sees every slot, so it must agree with the reference exactly.
        {"index": "lsh", "lsh_bits": 1, "lsh_probes": 1, "lsh_bucket_size": 96, "lsh_tables": 2},
    ],
)
def test_sequence_matches_reference(index_options: dict) -> None:
    rng = np.random.default_rng(5)
    memory = make(**index_options)
    contents = rng.normal(size=(B, N, W))
    state = start(memory, contents)
    refs = [RefState(contents[b], R, K) for b in range(B)]
    for _ in range(8):
        iface = rng.normal(scale=2.0, size=(B, memory.interface_size))
        reads, state = memory(t(iface), state)
        seen = memory.inspect(state)
        for b in range(B):
            want_reads, want_write = ref_step(list(iface[b]), refs[b], R, K, W)
            np.testing.assert_allclose(reads[b].detach().numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), refs[b].memory, rtol=0, atol=TOL)
            assert state.read_indices[b].tolist() == refs[b].read_idx
            np.testing.assert_allclose(
                state.read_weights[b].detach().numpy(), refs[b].read_w, rtol=0, atol=TOL
            )
            np.testing.assert_allclose(seen["write_weights"][b, 0].numpy(), want_write, atol=TOL)
            assert state.times[b, :N].tolist() == refs[b].times
    assert state.step.tolist() == [8] * B


def test_repeated_slots_in_a_write() -> None:
    # Two read heads with identical keys read the same K slots; the next write lists
    # each of them twice: the dense weighting (the reference) sums the entries.
    rng = np.random.default_rng(6)
    memory = make()
    contents = rng.normal(size=(B, N, W))
    state = start(memory, contents)
    refs = [RefState(contents[b], R, K) for b in range(B)]
    for _ in range(4):
        iface = rng.normal(scale=2.0, size=(B, memory.interface_size))
        iface[:, W + 1 : 2 * (W + 1)] = iface[:, : W + 1]  # head 1 = head 0
        reads, state = memory(t(iface), state)
        for b in range(B):
            want_reads, want_write = ref_step(list(iface[b]), refs[b], R, K, W)
            np.testing.assert_allclose(reads[b].detach().numpy(), want_reads, rtol=0, atol=TOL)
            np.testing.assert_allclose(state.memory[b].numpy(), refs[b].memory, rtol=0, atol=TOL)
            assert state.times[b, :N].tolist() == refs[b].times
    assert bool((state.write_indices[:, :K] == state.write_indices[:, K : 2 * K]).all())


def test_a_repeated_write_slot_is_counted_once_for_usage() -> None:
    # delta = 0.3. Step 0: both heads read slot 3 (K = 1, weight 1 each). Step 1 writes
    # slot 3 twice (once per head) with alpha gamma / R = 0.125 each: 0.25 in all, not
    # above delta, and reads slot 5; so slot 3 keeps its stamp 0.
    rng = np.random.default_rng(13)
    memory = make(slots=6, width=2, read_heads=2, sparse_reads=1, access_threshold=0.3)
    contents = rng.normal(size=(1, 6, 2))
    state = start(memory, contents)
    ref = RefState(contents[0], 2, 1)
    for target in (3, 5):
        iface = raw_interface(0.5, 0.5, [0.3, -0.2], contents[0, target], 1.0, reads=2)
        _, state = memory(t([iface]), state)
        ref_step(iface, ref, 2, 1, 2, delta=0.3)
    assert state.times[0, :6].tolist() == ref.times
    assert ref.times[3] == 0 and ref.times[5] == 1


# --- gradients -------------------------------------------------------------------------------


def dense_sequence(interfaces: torch.Tensor, contents: torch.Tensor) -> torch.Tensor:
    """The same maths with a dense (B, N, W) memory in autograd: the reference for gradients.

    interfaces (T, B, I), contents (B, N, W) -> reads (T, B, R W).
    """
    batch, slots, width = contents.shape
    mem = contents.clone()
    times = torch.full((batch, slots), -1, dtype=torch.int64)
    prev_idx = torch.arange(K).expand(batch, R, K)
    prev_w = torch.zeros(batch, R, K, dtype=F64)
    outs = []
    for step, iface in enumerate(interfaces):
        heads = iface[:, : R * (width + 1)].reshape(batch, R, width + 1)
        keys, beta = heads[..., :width], torch.nn.functional.softplus(heads[..., width:])
        rest = iface[:, R * (width + 1) :]
        word = torch.tanh(rest[:, :width])
        alpha, gamma = torch.sigmoid(rest[:, width : width + 1]), torch.sigmoid(rest[:, -1:])
        lra = torch.tensor(
            [min(range(slots), key=lambda i: (int(times[b, i]), i)) for b in range(batch)]
        )
        onehot = torch.nn.functional.one_hot(lra, slots).to(F64)
        write = (
            torch.zeros(batch, slots, dtype=F64).scatter_add(
                1, prev_idx.reshape(batch, -1), (alpha * gamma * prev_w.reshape(batch, -1)) / R
            )
            + alpha * (1 - gamma) * onehot
        )
        mem = mem * (1 - onehot).unsqueeze(-1) + write.unsqueeze(-1) * word.unsqueeze(1)
        dots = torch.einsum("brw,bnw->brn", keys, mem)
        norms = keys.norm(dim=-1, keepdim=True) * mem.norm(dim=-1).unsqueeze(1)
        sims = dots / (norms + 1e-6)
        idx = sims.detach().argsort(dim=-1, descending=True)[..., :K]
        weights = torch.softmax(beta * sims.gather(-1, idx), dim=-1)
        rows = torch.stack([mem[b][idx[b]] for b in range(batch)])  # (B, R, K, W)
        outs.append((weights.unsqueeze(-1) * rows).sum(-2).reshape(batch, -1))
        access = write.detach().scatter_add(
            1, idx.reshape(batch, -1), weights.detach().reshape(batch, -1)
        )
        times = torch.where(access > DELTA, torch.full_like(times, step), times)
        prev_idx, prev_w = idx, weights
    return torch.stack(outs)


def test_gradients_match_dense_reference() -> None:
    rng = np.random.default_rng(7)
    memory = make()
    steps = 6
    contents = rng.normal(size=(B, N, W))
    interfaces = t(rng.normal(scale=2.0, size=(steps, B, memory.interface_size)))
    weights = t(rng.normal(size=(steps, B, R * W)))

    x_sparse = interfaces.clone().requires_grad_()
    state = start(memory, contents)
    outs = []
    for x in x_sparse:
        reads, state = memory(x, state)
        outs.append(reads)
    sparse = torch.stack(outs)
    (sparse * weights).sum().backward()

    x_dense = interfaces.clone().requires_grad_()
    dense = dense_sequence(x_dense, t(contents))
    (dense * weights).sum().backward()

    torch.testing.assert_close(sparse, dense, rtol=0, atol=TOL)
    assert float(x_dense.grad.abs().sum()) > 0
    torch.testing.assert_close(x_sparse.grad, x_dense.grad, rtol=0, atol=TOL)
    # The write gates and word of step 0 matter for later reads: gradients reach them.
    assert float(x_sparse.grad[0, :, R * (W + 1) :].abs().sum()) > 0


def test_gradcheck_sequence() -> None:
    rng = np.random.default_rng(8)
    memory = make(slots=6, sparse_reads=2)
    contents = rng.normal(size=(B, 6, W))
    interfaces = t(rng.normal(size=(3, B, memory.interface_size))).requires_grad_()

    def fn(interfaces: torch.Tensor) -> torch.Tensor:
        state = start(memory, contents)
        outs = []
        for x in interfaces:
            reads, state = memory(x, state)
            outs.append(reads)
        return torch.stack(outs)

    assert torch.autograd.gradcheck(fn, (interfaces,))


def test_gradcheck_state() -> None:
    # With respect to the floating-point state a step consumes: the logged rows and the
    # previous read weights (the memory buffer is a constant by design).
    rng = np.random.default_rng(9)
    memory = make()
    state = start(memory, rng.normal(size=(B, N, W)))
    first = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    _, base = memory(first, state)
    assert base.rows.requires_grad and base.rows.shape == (B, E, W)
    interface = t(rng.normal(size=(B, memory.interface_size))).requires_grad_()
    rows = base.rows.detach().clone().requires_grad_()
    read_weights = base.read_weights.detach().clone().requires_grad_()
    frozen = {
        name: getattr(base, name).clone()
        for name in ("memory", "row_of_slot", "times", "block_min", "table", "fill")
    }

    def fn(interface: torch.Tensor, rows: torch.Tensor, read_weights: torch.Tensor):
        fresh = {name: value.clone() for name, value in frozen.items()}
        start_state = base._replace(rows=rows, read_weights=read_weights, **fresh)
        reads, new = memory(interface, start_state)
        return reads, new.rows, new.read_weights, new.write_weights

    assert torch.autograd.gradcheck(fn, (interface, rows, read_weights))


# --- truncation, no_grad, inspect, dtypes ----------------------------------------------------


def test_detach_drops_the_log_and_keeps_the_values() -> None:
    rng = np.random.default_rng(10)
    memory = make()
    contents = rng.normal(size=(B, N, W))
    interfaces = t(rng.normal(scale=2.0, size=(8, B, memory.interface_size))).requires_grad_()
    a, b = start(memory, contents), start(memory, contents)
    for step, x in enumerate(interfaces):
        if step == 4:
            b = detach_state(b)
        reads_a, a = memory(x, a)
        reads_b, b = memory(x, b)
        torch.testing.assert_close(reads_a, reads_b, rtol=0, atol=0)
        assert a.rows.shape[1] == (step + 1) * E
        assert b.rows.shape[1] == (step + 1 if step < 4 else step - 3) * E
        logged = b.row_of_slot[b.row_of_slot >= 0]
        assert int(logged.max()) < b.rows.shape[1]
    torch.testing.assert_close(a.memory, b.memory, rtol=0, atol=0)


def test_no_grad_keeps_no_log() -> None:
    # Evaluation: nothing to differentiate, so the state keeps the shapes of the initial
    # state (what nma.save_memory / load_memory rely on), and the values are the same.
    rng = np.random.default_rng(14)
    memory = make()
    contents = rng.normal(size=(B, N, W))
    with_grad, without = start(memory, contents), start(memory, contents)
    initial = memory.initial_state(B, CPU, F64)
    for _ in range(5):
        x = t(rng.normal(scale=2.0, size=(B, memory.interface_size))).requires_grad_()
        reads, with_grad = memory(x, with_grad)
        with torch.no_grad():
            reads_ng, without = memory(x, without)
        torch.testing.assert_close(reads_ng, reads.detach(), rtol=0, atol=0)
        assert without.rows.shape == initial.rows.shape
        assert without.slot_of_row.shape == initial.slot_of_row.shape
        assert bool((without.row_of_slot == -1).all())


def test_a_step_on_an_outdated_state_is_refused() -> None:
    # The in-place tensors of s0 were moved on by the step that made s1: stepping s0
    # again (as activation checkpointing would) must fail loudly, not silently.
    memory = make()
    s0 = memory.initial_state(B, CPU, F64)
    x = torch.randn(B, memory.interface_size, dtype=F64, requires_grad=True)
    _, s1 = memory(x, s0)
    branch = map_state(torch.clone, s1)  # a clone may branch
    _, s2 = memory(x, s1)
    with pytest.raises(RuntimeError, match="newest state"):
        memory(x, s1)
    reads_a, _ = memory(x, s2)
    reads_b, _ = memory(x, branch)
    assert reads_a.shape == reads_b.shape


def test_inspect() -> None:
    rng = np.random.default_rng(11)
    memory = make()
    state = start(memory, rng.normal(size=(B, N, W)))
    for _ in range(3):
        iface = t(rng.normal(size=(B, memory.interface_size)))
        _, state = memory(iface, state)
    seen = memory.inspect(state)
    assert set(seen) == {
        "read_weights", "write_weights", "memory", "last_access", "read_indices", "write_indices"
    }  # fmt: skip
    assert seen["read_weights"].shape == (B, R, N)
    assert seen["write_weights"].shape == (B, 1, N)
    assert seen["memory"].shape == (B, N, W) and seen["last_access"].shape == (B, N)
    assert seen["read_indices"].shape == (B, R, K) and seen["write_indices"].shape == (B, E)
    reads = seen["read_weights"]
    assert bool((reads >= 0).all()) and bool(((reads > 0).sum(-1) == K).all())
    torch.testing.assert_close(reads.sum(-1), torch.ones(B, R, dtype=F64))
    # After the first step the previous reads sum to 1 per head, so w^W sums to alpha.
    alpha = torch.sigmoid(iface[:, R * (W + 1) + W])
    torch.testing.assert_close(seen["write_weights"].sum(-1).squeeze(1), alpha)
    torch.testing.assert_close(seen["last_access"], state.times[:, :N].to(F64))


@pytest.mark.parametrize("index", ["exact", "lsh"])
def test_float32_long_run_stays_finite(index: str) -> None:
    torch.manual_seed(12)
    memory = SAMMemory(SAMMemory.Config(slots=64, index=index))
    state = memory.initial_state(4, CPU, torch.float32)
    for step in range(300):
        if step % 50 == 0:
            state = detach_state(state)
        reads, state = memory(torch.randn(4, memory.interface_size) * 3, state)
        assert reads.dtype == torch.float32
    assert bool(torch.isfinite(reads).all()) and bool(torch.isfinite(state.memory).all())
    assert bool(torch.isfinite(state.read_weights).all())


def test_registration() -> None:
    registered: dict[str, type] = {}
    nma_register_memories(lambda name, cls: registered.__setitem__(name, cls))
    assert registered["sam"] is SAMMemory
    assert registered["ntm"].__name__ == "NTMMemory"
