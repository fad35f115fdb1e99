"""The native CPU kernels: loading, falling back, and the NTM and DNC steps against the
Python fused steps (themselves tested against the composable modules in
test_ntm_step.py and test_dnc_step.py, which also run every case there on the native
kernels) where those files' small sizes do not reach: realistic sizes, whose vector
loops have remainders, gradients arriving at only some outputs, and float32."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from nma_plugins import native
from nma_plugins.memories.dnc_step import DNCStep
from nma_plugins.memories.dnc_step_native import NativeDNCStep
from nma_plugins.memories.ntm_step import NTMStep
from nma_plugins.memories.ntm_step_native import NativeNTMStep

F64 = torch.float64


def step_inputs(
    batch: int, reads: int, writes: int, slots: int, width: int, shifts: int, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    size = (reads + writes) * (width + 3 + shifts) + 2 * writes * width
    interface = 2 * torch.randn(batch, size, dtype=F64, generator=gen)
    memory = torch.randn(batch, slots, width, dtype=F64, generator=gen)
    write = torch.softmax(torch.randn(batch, writes, slots, dtype=F64, generator=gen), -1)
    read = torch.softmax(torch.randn(batch, reads, slots, dtype=F64, generator=gen), -1)
    return tuple(t.requires_grad_() for t in (interface, memory, write, read))


def assert_same_step(
    ours: tuple[torch.Tensor, ...],
    python: tuple[torch.Tensor, ...],
    inputs: list[torch.Tensor] | tuple[torch.Tensor, ...],
    used: range | tuple,
) -> None:
    """Equal outputs, and equal gradients at every input when only the outputs in
    ``used`` carry a gradient (autograd passes ``None`` for the others)."""
    for got, want in zip(ours, python, strict=True):
        assert torch.allclose(got, want, rtol=1e-12, atol=1e-12)

    def grads(outputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        loss = sum(
            (outputs[i] * torch.linspace(-1, 2, outputs[i].numel(), dtype=F64).view_as(outputs[i]))
            .sin()
            .sum()
            for i in used
        )
        return torch.autograd.grad(loss, inputs, allow_unused=True)

    for got, want in zip(grads(ours), grads(python), strict=True):
        assert torch.allclose(got, want, rtol=1e-10, atol=1e-12)


def test_the_kernels_build_here() -> None:
    """CI has a compiler: the native path must be the one that runs, not the fallback."""
    assert native.native_available()


@pytest.mark.parametrize(
    ("batch", "reads", "writes", "slots", "width", "shifts", "used"),
    [
        (5, 1, 1, 128, 20, 3, (0, 1, 2, 3)),
        (3, 2, 1, 37, 13, 5, (0,)),
        (2, 1, 3, 19, 9, 3, (1, 3)),
        (4, 3, 2, 11, 6, 7, (2,)),
    ],
)
def test_native_step_matches_the_python_step(
    batch: int, reads: int, writes: int, slots: int, width: int, shifts: int, used: tuple
) -> None:
    """Values, and gradients at every input when only the outputs in ``used`` carry a
    gradient (autograd passes ``None`` for the others)."""
    inputs = step_inputs(batch, reads, writes, slots, width, shifts)
    python = NTMStep.apply(*inputs, width, shifts, 1e-6)
    ours = NativeNTMStep.apply(*inputs, shifts, 1e-6)
    assert_same_step(ours, python, inputs, used)


def test_float32_agrees_with_float64() -> None:
    inputs = step_inputs(4, 1, 1, 128, 20, 3, seed=3)
    expected = NativeNTMStep.apply(*inputs, 3, 1e-6)
    single = [t.detach().float() for t in inputs]
    got = NativeNTMStep.apply(*single, 3, 1e-6)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float32
        assert torch.allclose(g.double(), e, rtol=1e-4, atol=1e-5)


def test_a_memory_expanded_over_the_batch_is_read_correctly() -> None:
    """The initial state's memory is one matrix expanded over the batch (stride 0)."""
    interface, memory, write, read = step_inputs(3, 1, 1, 10, 4, 3)
    shared = memory[0].detach().clone().requires_grad_()
    expanded = shared.unsqueeze(0).expand(3, 10, 4)
    got = NativeNTMStep.apply(interface, expanded, write, read, 3, 1e-6)
    want = NTMStep.apply(interface, expanded.contiguous(), write, read, 4, 3, 1e-6)
    assert torch.allclose(got[0], want[0], atol=1e-12)
    (grad,) = torch.autograd.grad(got[0].sum(), shared)
    (expected,) = torch.autograd.grad(want[0].sum(), shared)
    assert torch.allclose(grad, expected, atol=1e-12)


def dnc_inputs(batch: int, reads: int, slots: int, width: int, seed: int = 0) -> list[torch.Tensor]:
    """A random DNC state (link with a zero diagonal, usages in [0, 1]) and interface."""
    gen = torch.Generator().manual_seed(seed)
    size = (reads + 1) * (width + 1) + 2 * width + reads + 2 + 3 * reads
    interface = 2 * torch.randn(batch, size, dtype=F64, generator=gen)
    memory = torch.randn(batch, slots, width, dtype=F64, generator=gen)
    usage = torch.rand(batch, slots, dtype=F64, generator=gen)
    link = torch.rand(batch, slots, slots, dtype=F64, generator=gen) / slots
    link.diagonal(dim1=-2, dim2=-1).zero_()
    precedence = 0.7 * torch.softmax(torch.randn(batch, slots, dtype=F64, generator=gen), -1)
    read = torch.softmax(torch.randn(batch, reads, slots, dtype=F64, generator=gen), -1)
    write = 0.9 * torch.softmax(torch.randn(batch, 1, slots, dtype=F64, generator=gen), -1)
    tensors = [interface, memory, usage, link, precedence, read, write]
    return [value.requires_grad_() for value in tensors]


@pytest.mark.parametrize(
    ("batch", "reads", "slots", "width", "used"),
    [
        (3, 1, 128, 20, range(7)),
        (2, 4, 37, 13, (0,)),
        (2, 2, 19, 9, (3, 4)),
        (3, 3, 11, 6, (1, 2, 5, 6)),
    ],
)
def test_native_dnc_step_matches_the_python_step(
    batch: int, reads: int, slots: int, width: int, used: range | tuple
) -> None:
    inputs = dnc_inputs(batch, reads, slots, width)
    python = DNCStep.apply(*inputs, 1e-6, 1e-6, 1e-6)
    ours = NativeDNCStep.apply(*inputs, 1e-6, 1e-6, 1e-6)
    assert_same_step(ours, python, inputs, used)


def test_native_dnc_step_without_a_link_gradient() -> None:
    """The first step's link is a constant: no N x N gradient is computed for it."""
    inputs = dnc_inputs(2, 2, 16, 5, seed=1)
    inputs[3] = inputs[3].detach()
    ours = NativeDNCStep.apply(*inputs, 1e-6, 1e-6, 1e-6)
    python = DNCStep.apply(*inputs, 1e-6, 1e-6, 1e-6)
    differentiable = [value for value in inputs if value.requires_grad]
    got = torch.autograd.grad(sum(o.sum() for o in ours), differentiable)
    want = torch.autograd.grad(sum(o.sum() for o in python), differentiable)
    for g, w in zip(got, want, strict=True):
        assert torch.allclose(g, w, rtol=1e-10, atol=1e-12)


def test_dnc_float32_agrees_with_float64() -> None:
    inputs = dnc_inputs(3, 2, 64, 16, seed=2)
    expected = NativeDNCStep.apply(*inputs, 1e-6, 1e-6, 1e-6)
    got = NativeDNCStep.apply(*[value.detach().float() for value in inputs], 1e-6, 1e-6, 1e-6)
    for g, e in zip(got, expected, strict=True):
        assert g.dtype == torch.float32
        assert torch.allclose(g.double(), e, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("slots", [37, 64])
def test_dnc_float32_gradients_agree_with_float64(slots: int) -> None:
    """The float32 kernels' gradients, whose link loops run eight floats a vector in
    blocks of four rows: with 37 slots every loop has a remainder of rows and of
    columns, with 64 none."""
    inputs = dnc_inputs(3, 2, slots, 16, seed=3)
    singles = [value.detach().float().requires_grad_() for value in inputs]

    def grads(values: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        outputs = NativeDNCStep.apply(*values, 1e-6, 1e-6, 1e-6)
        loss = sum(
            (out * torch.linspace(-1, 2, out.numel(), dtype=out.dtype).view_as(out)).sin().sum()
            for out in outputs
        )
        return torch.autograd.grad(loss, values)

    for got, want in zip(grads(singles), grads(inputs), strict=True):
        assert got.dtype == torch.float32
        assert torch.allclose(got.double(), want, rtol=1e-4, atol=1e-4)


def test_switched_off_by_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NMA_NATIVE", "0")
    native.native_available.cache_clear()
    try:
        assert not native.native_available()
        assert not native.use_native(torch.zeros(1))
        with pytest.raises(RuntimeError, match="not available"):
            native.native_ops()
    finally:
        native.native_available.cache_clear()


def test_a_failed_build_warns_and_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import torch.utils.cpp_extension

    def broken(**kwargs: object) -> None:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(torch.utils.cpp_extension, "load", broken)
    monkeypatch.setattr(native, "_registered", lambda: False)
    monkeypatch.setenv("NMA_NATIVE_CACHE", str(tmp_path))
    native.native_available.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler"):
            assert not native.native_available()
    finally:
        native.native_available.cache_clear()


def test_builds_unused_for_a_month_are_pruned(tmp_path: Path) -> None:
    current, stale, recent, stale_unmarked = (
        tmp_path / name for name in ("0" * 16, "1" * 16, "2" * 16, "3" * 16)
    )
    foreign = tmp_path / "notes"  # not a build's name: never touched
    for build in (current, stale, recent, stale_unmarked, foreign):
        build.mkdir()
        (build / "nma_native.so").write_bytes(b"")
    old = time.time() - (native.STALE_AFTER_DAYS + 1) * 24 * 3600
    for build in (stale, recent):
        (build / "last-used").touch()
    os.utime(stale / "last-used", (old, old))
    for directory in (stale_unmarked, foreign):
        os.utime(directory, (old, old))

    native._mark_used_and_prune(current)

    assert (current / "last-used").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [current.name, recent.name, foreign.name]
    )


def test_only_cpu_float_states_use_the_kernels() -> None:
    assert native.use_native(torch.zeros(2, dtype=torch.float32))
    assert native.use_native(torch.zeros(2, dtype=F64), torch.zeros(2, dtype=torch.bfloat16))
    assert not native.use_native(torch.zeros(2, dtype=torch.bfloat16))
    assert not native.use_native(torch.zeros(2), torch.zeros(2, device="meta"))


def test_compiled_graphs_call_the_kernels() -> None:
    """Under ``torch.compile`` the steps trace to calls of the native operators (their
    fake implementations give the shapes), forward and backward, with eager's values."""
    from functorch.compile import make_boxed_func
    from torch._dynamo.backends.common import aot_autograd

    from nma_plugins.addressing import ContentAddressing
    from nma_plugins.memories import DNCMemory
    from nma_plugins.memories.ntm_step import ntm_step

    graphs: list[str] = []

    def record(gm: torch.fx.GraphModule, example_inputs: object) -> object:
        graphs.append(str(gm.graph))
        return make_boxed_func(gm.forward)

    backend = aot_autograd(fw_compiler=record, bw_compiler=record)
    torch._dynamo.reset()
    inputs = [value.detach().float().requires_grad_() for value in step_inputs(2, 1, 1, 8, 4, 3)]

    def ntm(*args: torch.Tensor) -> torch.Tensor:
        return ntm_step(*args, 4, 3, 1e-6)[0].sum()

    got = torch.compile(ntm, backend=backend, fullgraph=True)(*inputs)
    assert torch.allclose(got, ntm(*inputs))
    got.backward()
    assert "nma_native.ntm_forward" in graphs[0] and "nma_native.ntm_backward" in graphs[1]

    graphs.clear()
    memory = DNCMemory(
        DNCMemory.Config(slots=8, width=4, read_heads=2),
        lambda width, heads: ContentAddressing(ContentAddressing.Config(), width, heads),
    )
    state = memory.initial_state(2, torch.device("cpu"), torch.float32)
    x = torch.randn(2, memory.interface_size, requires_grad=True)
    compiled = torch.compile(memory, backend=backend, fullgraph=True)
    compiled(x, state)[0].sum().backward()
    assert "nma_native.dnc_forward" in graphs[0] and "nma_native.dnc_backward" in graphs[1]
