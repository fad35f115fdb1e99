"""The fused DNC step (one autograd node, hand-written backward) against the reference path.

Both fused steps, the Python ``DNCStep`` and the native kernels' ``NativeDNCStep`` (the
``fused_path`` fixture runs each test with each), are compared with
:meth:`DNCMemory.forward_reference`, the composable functions recorded by autograd
(itself tested against the Methods in test_dnc_memory.py). Every comparison is in
float64: outputs, every state tensor, and the gradients at the interface and at every
state tensor, over several steps carrying the state.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from nma.build import build_components
from nma.config import build_raw, resolve
from nma.registry import get_registry
from nma_plugins.addressing import ContentAddressing, NTMAddressing
from nma_plugins.memories.dnc import DNCMemory, DNCState
from nma_plugins.memories.dnc_step import dnc_step, exclusive_head_products

TOL = 1e-10
CONTENT_EPS = 1e-6


def content_factory(width: int, heads: int) -> ContentAddressing:
    return ContentAddressing(ContentAddressing.Config(eps=CONTENT_EPS), width, heads)


def make(slots: int, width: int, read_heads: int) -> DNCMemory:
    config = DNCMemory.Config(slots=slots, width=width, read_heads=read_heads)
    return DNCMemory(config, content_factory).double()


def t(array) -> torch.Tensor:
    return torch.tensor(np.asarray(array), dtype=torch.float64)


def random_state(
    rng: np.random.Generator, batch: int, slots: int, width: int, heads: int
) -> DNCState:
    """A state as the memory could reach it, with ties, a usage of exactly 0 and 1."""
    link = rng.uniform(size=(batch, slots, slots)) / slots
    for b in range(batch):
        np.fill_diagonal(link[b], 0.0)
    usage = rng.uniform(0.05, 0.95, size=(batch, slots))
    write = rng.dirichlet(np.ones(slots), size=(batch, 1)) * 0.8
    usage[:, 0] = 0.0  # never written: stays exactly 0
    write[:, 0, 0] = 0.0
    usage[:, 1] = 1.0  # full: u^ = 1
    usage[:, 3] = usage[:, 2]  # a tie
    write[:, 0, 3] = write[:, 0, 2]
    return DNCState(
        memory=t(rng.normal(size=(batch, slots, width))),
        usage=t(usage),
        link=t(link),
        precedence=t(rng.dirichlet(np.ones(slots), size=batch) * 0.9),
        read_weights=t(rng.dirichlet(np.ones(slots), size=(batch, heads))),
        write_weights=t(write),
    )


def run_steps(forward, state: DNCState, interfaces: list[torch.Tensor]):
    reads = []
    for xi in interfaces:
        r, state = forward(xi, state)
        reads.append(r)
    return reads, state


def compare_paths(
    memory: DNCMemory,
    state: DNCState,
    interfaces: list[torch.Tensor],
    reads_only: bool,
    seed: int,
) -> None:
    """Outputs and gradients of both paths, for a random linear loss on what they return."""
    results = {}
    for name, forward in (("fused", memory.forward), ("reference", memory.forward_reference)):
        leaves = [xi.clone().requires_grad_() for xi in interfaces]
        start = DNCState(*(value.clone().requires_grad_() for value in state))
        reads, final = run_steps(forward, start, leaves)
        outputs = reads if reads_only else [*reads, *final]
        gen = torch.Generator().manual_seed(seed)
        loss = sum(
            (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum() for out in outputs
        )
        grads = torch.autograd.grad(loss, [*leaves, *start])
        results[name] = ([r.detach() for r in reads], [v.detach() for v in final], grads)
    fused, ref = results["fused"], results["reference"]
    for got, want in zip(fused[0], ref[0], strict=True):
        torch.testing.assert_close(got, want, rtol=TOL, atol=TOL, msg="reads")
    for name, got, want in zip(DNCState._fields, fused[1], ref[1], strict=True):
        torch.testing.assert_close(got, want, rtol=TOL, atol=TOL, msg=name)
    names = [f"interface {i}" for i in range(len(interfaces))] + [
        f"initial {name}" for name in DNCState._fields
    ]
    for name, got, want in zip(names, fused[2], ref[2], strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape, name
        torch.testing.assert_close(got, want, rtol=TOL, atol=TOL, msg=lambda m, n=name: f"{n}: {m}")


# --- the fused step equals the reference path ----------------------------------------------


@pytest.mark.parametrize("reads_only", [False, True])
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_matches_reference_from_the_initial_state(
    heads: int, reads_only: bool, fused_path: str
) -> None:
    # All usages 0 at first: the free list is all ties, and the usage stays 0 in slots no
    # weighting touches (below the allocation's eps).
    rng = np.random.default_rng(heads)
    batch, slots, width = 3, 7, 4
    memory = make(slots, width, heads)
    state = memory.initial_state(batch, torch.device("cpu"), torch.float64)
    interfaces = [t(rng.normal(scale=2.0, size=(batch, memory.interface_size))) for _ in range(5)]
    compare_paths(memory, state, interfaces, reads_only, seed=heads)


@pytest.mark.parametrize("reads_only", [False, True])
@pytest.mark.parametrize("heads", [1, 2, 4])
def test_matches_reference_from_a_random_state(
    heads: int, reads_only: bool, fused_path: str
) -> None:
    rng = np.random.default_rng(10 + heads)
    batch, slots, width = 2, 9, 3
    memory = make(slots, width, heads)
    state = random_state(rng, batch, slots, width, heads)
    interfaces = [t(rng.normal(scale=2.0, size=(batch, memory.interface_size))) for _ in range(4)]
    compare_paths(memory, state, interfaces, reads_only, seed=10 + heads)


def test_matches_reference_with_long_rows(fused_path: str) -> None:
    """Slots and width above the kernels' 32-wide dot products, with remainders."""
    rng = np.random.default_rng(7)
    batch, slots, width, heads = 2, 45, 43, 2
    memory = make(slots, width, heads)
    state = random_state(rng, batch, slots, width, heads)
    interfaces = [t(rng.normal(scale=2.0, size=(batch, memory.interface_size))) for _ in range(3)]
    compare_paths(memory, state, interfaces, False, seed=7)


def test_matches_reference_with_a_fully_freed_slot(fused_path: str) -> None:
    # Free gate sigmoid(50) == 1.0 in float64 and a one-hot read weighting: the retention
    # factor of head 0 at slot 2 is exactly 0, so dpsi/dk_1 must not be psi / k_1.
    rng = np.random.default_rng(20)
    batch, slots, width, heads = 2, 6, 3, 2
    memory = make(slots, width, heads)
    state = random_state(rng, batch, slots, width, heads)
    one_hot = torch.zeros(batch, heads, slots, dtype=torch.float64)
    one_hot[:, 0, 2] = 1.0
    one_hot[:, 1] = state.read_weights[:, 1]
    state = state._replace(read_weights=one_hot)
    interfaces = [t(rng.normal(size=(batch, memory.interface_size))) for _ in range(3)]
    free_start = heads * (width + 1) + (width + 1) + 2 * width
    interfaces[0][:, free_start] = 50.0
    compare_paths(memory, state, interfaces, reads_only=False, seed=20)


def test_saturated_gates_and_large_strengths(fused_path: str) -> None:
    # Strengths above softplus' threshold (identity there), gates at 0 and 1.
    rng = np.random.default_rng(21)
    batch, slots, width, heads = 2, 6, 3, 2
    memory = make(slots, width, heads)
    state = random_state(rng, batch, slots, width, heads)
    xi = t(rng.normal(size=(batch, memory.interface_size)))
    xi[:, width] = 25.0  # read head 0's strength
    xi[:, heads * (width + 1) + width] = 30.0  # the write head's
    gates = memory.interface_size - 3 * heads - 2
    xi[0, gates : gates + 2] = 40.0
    xi[1, gates : gates + 2] = -40.0
    compare_paths(memory, state, [xi, xi.flip(0)], reads_only=False, seed=21)


# --- gradcheck of the Function itself --------------------------------------------------------


@pytest.mark.parametrize("heads", [1, 3])
def test_gradcheck(heads: int, fused_path: str) -> None:
    rng = np.random.default_rng(30 + heads)
    batch, slots, width = 2, 5, 3
    memory = make(slots, width, heads)
    state = random_state(rng, batch, slots, width, heads)
    # Away from ties (the sort's order must not change under the perturbations) and from
    # the usage floor: distinct usages, write weights and read weights.
    usage = np.stack([rng.permutation(slots) for _ in range(batch)]) / slots * 0.8 + 0.1
    state = state._replace(
        usage=t(usage),
        write_weights=t(rng.dirichlet(np.ones(slots), size=(batch, 1)) * 0.5),
    )
    xi = t(rng.normal(size=(batch, memory.interface_size)))
    inputs = (xi, *state)
    inputs = tuple(value.clone().requires_grad_() for value in inputs)

    def fn(*args: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return dnc_step(*args, CONTENT_EPS, CONTENT_EPS, 1e-30)

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_exclusive_head_products_with_zeros() -> None:
    kept = t([[[0.5, 0.0, 2.0]], [[3.0, 0.0, 0.5]], [[0.0, 0.0, 4.0]]]).transpose(0, 1)
    got = exclusive_head_products(kept)  # (1, 3, 3): heads along dim 1
    want = t([[[0.0, 0.0, 2.0], [0.0, 0.0, 8.0], [1.5, 0.0, 1.0]]])
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    single = t([[[0.0, 3.0]]])
    torch.testing.assert_close(exclusive_head_products(single), torch.ones_like(single))


# --- dispatch, memory kept for the backward, autocast, compile -------------------------------


def test_content_addressing_runs_fused_and_others_the_reference(fused_path: str) -> None:
    memory = make(6, 3, 2)
    state = memory.initial_state(2, torch.device("cpu"), torch.float64)
    xi = torch.randn(2, memory.interface_size, dtype=torch.float64, requires_grad=True)
    reads, _ = memory(xi, state)
    expected = "NativeDNCStepBackward" if fused_path == "native" else "DNCStepBackward"
    assert type(reads.grad_fn).__name__ == expected
    ntm = DNCMemory(
        DNCMemory.Config(slots=6, width=3, read_heads=2),
        lambda w, h: NTMAddressing(NTMAddressing.Config(), w, h),
    ).double()
    xi = torch.randn(2, ntm.interface_size, dtype=torch.float64, requires_grad=True)
    reads, _ = ntm(xi, ntm.initial_state(2, torch.device("cpu"), torch.float64))
    assert "DNCStep" not in type(reads.grad_fn).__name__


def test_saves_only_the_previous_link_matrix(fused_path: str) -> None:
    # The one N x N tensor kept for the backward pass is L_{t-1}, the input (alive anyway
    # as the previous state); L_t is not needed (under activation checkpointing, the
    # last step of a chunk then keeps no recomputed L_t alive).
    batch, slots, width, heads = 2, 16, 3, 2
    memory = make(slots, width, heads)
    state = random_state(np.random.default_rng(40), batch, slots, width, heads)
    state = DNCState(*(value.clone().requires_grad_() for value in state))
    xi = torch.randn(batch, memory.interface_size, dtype=torch.float64, requires_grad=True)
    saved: list[torch.Tensor] = []

    def pack(value: torch.Tensor) -> torch.Tensor:
        saved.append(value)
        return value

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda value: value):
        memory(xi, state)
    square = [value for value in saved if value.shape[-2:] == (slots, slots)]
    assert [value.data_ptr() for value in square] == [state.link.data_ptr()]


def test_bf16_autocast_computes_in_the_state_dtype(fused_path: str) -> None:
    memory = make(6, 3, 2).float()
    state = memory.initial_state(2, torch.device("cpu"), torch.float32)
    xi = torch.randn(2, memory.interface_size, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        interface = xi.to(torch.bfloat16)
        reads, new = memory(interface, state)
        reads, new = memory(interface * 0.5, new)
    assert reads.dtype == torch.float32
    assert all(value.dtype == torch.float32 for value in new)
    (reads.sum() + new.memory.sum() + new.link.sum()).backward()
    assert xi.grad is not None and bool(torch.isfinite(xi.grad).all())
    want, _ = memory(xi.detach().to(torch.bfloat16).float(), state)
    want, _ = memory(xi.detach().to(torch.bfloat16).float() * 0.5, _)
    torch.testing.assert_close(reads, want, rtol=1e-5, atol=1e-6)


def test_compiles_with_aot_eager() -> None:
    torch._dynamo.reset()
    memory = make(5, 3, 2)
    state = random_state(np.random.default_rng(41), 2, 5, 3, 2)
    xi = t(np.random.default_rng(42).normal(size=(2, memory.interface_size)))

    def loss(fn, xi: torch.Tensor, state: DNCState) -> tuple[torch.Tensor, ...]:
        xi = xi.clone().requires_grad_()
        state = DNCState(*(v.clone().requires_grad_() for v in state))
        reads, new = fn(xi, state)
        total = reads.sum() + sum((v * v).sum() for v in new)
        return (reads, *new, *torch.autograd.grad(total, [xi, *state]))

    start = time.perf_counter()
    compiled = torch.compile(memory, backend="aot_eager", fullgraph=True)
    got = loss(compiled, xi, state)
    elapsed = time.perf_counter() - start
    want = loss(memory, xi, state)
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert elapsed < 30


# --- a whole model ---------------------------------------------------------------------------


def test_model_parameter_gradients_match_reference(fused_path: str) -> None:
    registry = get_registry()
    raw = build_raw(
        None,
        {"components.memory": "dnc"},
        ["memory.slots=7", "memory.width=4", "memory.read_heads=2", "controller.hidden_size=12"],
    )
    torch.manual_seed(0)
    parts = build_components(resolve(raw, registry), registry)
    model = parts.model.double()
    inputs = torch.randn(10, 3, parts.task.input_size, dtype=torch.float64)
    targets = torch.randn(10, 3, parts.task.output_size, dtype=torch.float64)

    def gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        outputs, _ = model(inputs)
        ((outputs - targets) ** 2).sum().backward()
        return outputs.detach(), [p.grad.clone() for p in model.parameters()]

    fused_out, fused = gradients()
    memory = model.memory
    memory.forward = memory.forward_reference  # instance attribute: this model only
    ref_out, ref = gradients()
    torch.testing.assert_close(fused_out, ref_out, rtol=TOL, atol=TOL)
    names = [name for name, _ in model.named_parameters()]
    for name, got, want in zip(names, fused, ref, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-10, msg=name)
    assert any(float(g.abs().max()) > 0 for g in fused)


def test_expanded_and_missing_incoming_gradients(fused_path: str) -> None:
    # A sum gives expanded (stride 0) gradients; unused outputs give none at all.
    rng = np.random.default_rng(50)
    memory = make(6, 3, 2)
    state = random_state(rng, 2, 6, 3, 2)
    xi = t(rng.normal(size=(2, memory.interface_size)))
    for used in (range(7), [0], [3], [1, 5]):
        grads = []
        for forward in (memory.forward, memory.forward_reference):
            leaves = [xi.clone().requires_grad_(), *(v.clone().requires_grad_() for v in state)]
            reads, new = forward(leaves[0], DNCState(*leaves[1:]))
            outputs = [reads, *new]
            sum(outputs[i].sum() for i in used).backward()
            grads.append([leaf.grad for leaf in leaves])
        for got, want in zip(*grads, strict=True):
            if want is None:
                assert got is None or bool((got == 0).all())
            else:
                torch.testing.assert_close(got, want, rtol=TOL, atol=TOL)
