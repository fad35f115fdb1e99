"""The fused NTM step and its hand-written gradients, in Python and in native code.

Values and gradients of both fused paths (the Python ``NTMStep`` and the native
kernels' ``NativeNTMStep``) are compared in float64 with the composable modules
differentiated by autograd (themselves tested against the paper's equations in
test_ntm_memory.py and test_ntm_addressing.py), and with finite differences
(``gradcheck``), which share no code with any of them.
"""

from __future__ import annotations

import pytest
import torch

from nma_plugins.addressing import ContentAddressing, NTMAddressing
from nma_plugins.addressing.content import content_weights
from nma_plugins.addressing.content_fused import content_backward, content_forward
from nma_plugins.addressing.ntm import circular_shift, interpolate, sharpen
from nma_plugins.addressing.ntm_fused import location_backward, location_forward
from nma_plugins.memories import NTMMemory
from nma_plugins.memories.ntm_step import ntm_step

F64 = torch.float64
TOL = 1e-10


def close(a: torch.Tensor, b: torch.Tensor, tol: float = TOL) -> bool:
    return torch.allclose(a, b, rtol=tol, atol=tol)


def test_content_backward_matches_autograd() -> None:
    gen = torch.Generator().manual_seed(0)
    keys = torch.randn(3, 2, 5, dtype=F64, generator=gen)
    strengths = torch.rand(3, 2, 1, dtype=F64, generator=gen) * 4
    memory = torch.randn(3, 7, 5, dtype=F64, generator=gen)
    memory[0, 2] = 0  # a zero row: its norm's gradient is taken as 0
    grad = torch.randn(3, 2, 7, dtype=F64, generator=gen)
    inputs = [t.clone().requires_grad_() for t in (keys, strengths, memory)]
    expected = content_weights(*inputs, 1e-6)
    expected_grads = torch.autograd.grad(expected, inputs, grad)
    weights, saved = content_forward(keys, strengths, memory, 1e-6)
    assert close(weights, expected.detach())
    for got, want in zip(content_backward(grad, saved), expected_grads, strict=True):
        assert close(got, want, 1e-9)


@pytest.mark.parametrize(("slots", "shift_range"), [(7, 1), (5, 2), (4, 4)])
def test_location_backward_matches_autograd(slots: int, shift_range: int) -> None:
    gen = torch.Generator().manual_seed(slots)
    b, h, s = 3, 2, 2 * shift_range + 1
    content = torch.softmax(torch.randn(b, h, slots, dtype=F64, generator=gen), -1)
    prev = torch.softmax(torch.randn(b, h, slots, dtype=F64, generator=gen), -1)
    gate = torch.rand(b, h, 1, dtype=F64, generator=gen)
    shift = torch.softmax(torch.randn(b, h, s, dtype=F64, generator=gen), -1)
    gamma = 1 + 3 * torch.rand(b, h, 1, dtype=F64, generator=gen)
    grad = torch.randn(b, h, slots, dtype=F64, generator=gen)
    inputs = [t.clone().requires_grad_() for t in (content, prev, gate, shift, gamma)]
    expected = sharpen(circular_shift(interpolate(*inputs[:3]), inputs[3]), inputs[4])
    expected_grads = torch.autograd.grad(expected, inputs, grad)
    weights, saved = location_forward(content, prev, gate, shift, gamma)
    assert close(weights, expected.detach())
    for got, want in zip(location_backward(grad, saved), expected_grads, strict=True):
        assert close(got, want)


def ntm(read_heads: int, write_heads: int, slots: int, width: int, shift_range: int) -> NTMMemory:
    def factory(w: int, heads: int) -> NTMAddressing:
        return NTMAddressing(NTMAddressing.Config(shift_range=shift_range), w, heads)

    config = NTMMemory.Config(
        slots=slots, width=width, read_heads=read_heads, write_heads=write_heads
    )
    return NTMMemory(config, factory).double()


@pytest.mark.parametrize(
    ("read_heads", "write_heads", "slots", "width", "shift_range"),
    # The last has rows longer than the kernels' 32-wide dot products, with a remainder.
    [(1, 1, 7, 5, 1), (2, 3, 6, 4, 2), (3, 1, 5, 3, 1), (1, 2, 3, 2, 3), (2, 1, 45, 43, 1)],
)
def test_fused_steps_match_the_composable_path(
    read_heads: int, write_heads: int, slots: int, width: int, shift_range: int, fused_path: str
) -> None:
    """Several steps from the initial state (one-hot weightings: exact zeros), every
    output and the gradients of the interface and the learned initial memory."""
    memory = ntm(read_heads, write_heads, slots, width, shift_range)
    steps, batch = 4, 3
    gen = torch.Generator().manual_seed(1)
    interface = 2 * torch.randn(steps, batch, memory.interface_size, dtype=F64, generator=gen)
    interface.requires_grad_()

    def run(forward):
        state = memory.initial_state(batch, torch.device("cpu"), F64)
        reads = []
        for t in range(steps):
            read, state = forward(interface[t], state)
            reads.append(read)
        reads = torch.stack(reads)
        loss = (reads * torch.linspace(-1, 1, reads.numel(), dtype=F64).view_as(reads)).sum()
        loss = loss + state.memory.cos().sum() + (3 * state.read_weights).square().sum()
        loss = loss + state.write_weights.sin().sum()
        grads = torch.autograd.grad(loss, [interface, memory.memory_init])
        return reads, state, grads

    fused = run(memory.forward)
    reference = run(memory.forward_reference)
    assert close(fused[0], reference[0])
    for got, want in zip(fused[1], reference[1], strict=True):
        assert close(got, want)
    for got, want in zip(fused[2], reference[2], strict=True):
        assert close(got, want)


def test_gradcheck_fused_step(fused_path: str) -> None:
    gen = torch.Generator().manual_seed(2)
    b, r, wh, n, w, s = 2, 2, 2, 5, 3, 3
    size = (r + wh) * (w + 3 + s) + 2 * wh * w
    interface = torch.randn(b, size, dtype=F64, generator=gen, requires_grad=True)
    memory = torch.randn(b, n, w, dtype=F64, generator=gen, requires_grad=True)
    write = torch.softmax(torch.randn(b, wh, n, dtype=F64, generator=gen), -1).requires_grad_()
    read = torch.softmax(torch.randn(b, r, n, dtype=F64, generator=gen), -1).requires_grad_()

    def step(*args):
        return ntm_step(*args, w, s, 1e-6)

    assert torch.autograd.gradcheck(step, (interface, memory, write, read))


def test_dispatch(fused_path: str) -> None:
    """The ``ntm`` addressing runs fused (natively on the CPU where the kernels are
    on); any other scheme runs the composable path."""
    fused = ntm(1, 1, 6, 4, 1)
    x = torch.randn(2, fused.interface_size, dtype=F64, requires_grad=True)
    reads, _ = fused(x, fused.initial_state(2, torch.device("cpu"), F64))
    expected = "NativeNTMStepBackward" if fused_path == "native" else "NTMStepBackward"
    assert type(reads.grad_fn).__name__ == expected

    def content(w: int, heads: int) -> ContentAddressing:
        return ContentAddressing(ContentAddressing.Config(), w, heads)

    plain = NTMMemory(NTMMemory.Config(slots=6, width=4), content).double()
    x = torch.randn(2, plain.interface_size, dtype=F64, requires_grad=True)
    reads, _ = plain(x, plain.initial_state(2, torch.device("cpu"), F64))
    assert type(reads.grad_fn).__name__ not in ("NTMStepBackward", "NativeNTMStepBackward")


def test_bf16_autocast_computes_the_memory_in_float32(fused_path: str) -> None:
    memory = ntm(1, 1, 8, 4, 1).float()
    x = torch.randn(2, memory.interface_size)
    state = memory.initial_state(2, torch.device("cpu"), torch.float32)
    expected, _ = memory(x, state)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got, new_state = memory(x.bfloat16(), state)
    assert got.dtype == torch.float32 and new_state.memory.dtype == torch.float32
    assert torch.allclose(got, expected, atol=0.05)


def test_compiles() -> None:
    memory = ntm(1, 1, 6, 4, 1).float()
    x = torch.randn(2, memory.interface_size, requires_grad=True)
    state = memory.initial_state(2, torch.device("cpu"), torch.float32)
    expected, _ = memory(x, state)
    (grad,) = torch.autograd.grad(expected.sum(), x)
    compiled = torch.compile(memory, backend="aot_eager", fullgraph=True)
    got, _ = compiled(x, state)
    (got_grad,) = torch.autograd.grad(got.sum(), x)
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got_grad, grad, atol=1e-6)
