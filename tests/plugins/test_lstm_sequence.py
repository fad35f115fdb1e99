"""The LSTM controller and a native memory step as one node per sequence, against the
model stepped one time step at a time (the LSTM cell and the memory's own fused step,
each checked against independent references in test_lstm_cell.py, test_ntm_step.py and
test_dnc_step.py): outputs, final states and every gradient, in float64."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from nma.model import MemoryModel, ModelState
from nma.state import map_state
from nma_plugins.addressing.content import ContentAddressing
from nma_plugins.addressing.ntm import NTMAddressing
from nma_plugins.controllers import lstm_sequence
from nma_plugins.controllers.gru import GRUController
from nma_plugins.controllers.lstm import LSTMController
from nma_plugins.controllers.lstm_sequence import LSTMMemorySequence
from nma_plugins.memories.dnc import DNCMemory
from nma_plugins.memories.ntm import NTMMemory
from nma_plugins.native import native_available

F64 = torch.float64
pytestmark = pytest.mark.skipif(not native_available(), reason="native kernels unavailable")


def content(width: int, heads: int) -> ContentAddressing:
    return ContentAddressing(ContentAddressing.Config(), width, heads)


def ntm_addressing(width: int, heads: int) -> NTMAddressing:
    return NTMAddressing(NTMAddressing.Config(shift_range=1), width, heads)


def build(memory: str, layers: int = 1, inputs: int = 5, hidden: int = 11) -> MemoryModel:
    torch.manual_seed(3)
    if memory == "ntm":
        mem = NTMMemory(NTMMemory.Config(slots=7, width=4, read_heads=2), ntm_addressing)
    else:
        mem = DNCMemory(DNCMemory.Config(slots=6, width=4, read_heads=2), content)
    controller = LSTMController(
        LSTMController.Config(hidden_size=hidden, layers=layers), inputs + mem.read_size
    )
    return MemoryModel(controller, mem, 3).double()


def random_state(model: MemoryModel, batch: int) -> ModelState:
    """A state from the middle of a sequence: every float tensor random, requiring grad."""
    state = model.initial_state(batch)
    torch.manual_seed(5)

    def scramble(t: Tensor) -> Tensor:
        if not t.is_floating_point():
            return t
        if t.dim() >= 2 and t.shape[-1] == t.shape[-2] and model.memory.slots == t.shape[-1]:
            fresh = torch.rand_like(t) * (1 - torch.eye(t.shape[-1], dtype=t.dtype)) * 0.1
        else:
            fresh = torch.rand_like(t).softmax(-1) if t.dim() == 3 else torch.rand_like(t)
        return fresh.requires_grad_()

    return map_state(scramble, state)


def tensors(state: object) -> list[Tensor]:
    """Every tensor of a (nested) state, in order."""
    if isinstance(state, Tensor):
        return [state]
    if isinstance(state, tuple):
        return [t for part in state for t in tensors(part)]
    return []


def loss_of(outputs: Tensor, state: ModelState) -> Tensor:
    weights = torch.linspace(-1, 2, outputs.numel(), dtype=outputs.dtype).view_as(outputs)
    loss = (outputs * weights).sin().sum()
    loss = loss + sum(t.cos().sum() for t in state.memory if t.is_floating_point())
    return loss + state.controller.cell.sum() * 0.3 + state.reads.square().sum()


def run(
    model: MemoryModel, fused: bool, inputs: Tensor, state: ModelState | None
) -> tuple[Tensor, ModelState]:
    if fused:
        return model(inputs, state)
    original = model._run_fused
    model._run_fused = lambda *args: None  # type: ignore[method-assign]
    try:
        return model(inputs, state)
    finally:
        model._run_fused = original  # type: ignore[method-assign]


def compare(model: MemoryModel, make: Callable[[], tuple[Tensor, ModelState | None]]) -> None:
    results = []
    for fused in (True, False):
        inputs, state = make()
        leaves = [*model.parameters(), inputs, *tensors(state)]
        leaves = [t for t in leaves if t.requires_grad]
        outputs, final = run(model, fused, inputs, state)
        grads = torch.autograd.grad(loss_of(outputs, final), leaves, allow_unused=True)
        results.append((outputs, final, grads))
    (out_a, final_a, grads_a), (out_b, final_b, grads_b) = results
    torch.testing.assert_close(out_a, out_b, rtol=1e-12, atol=1e-12)
    for a, b in zip(tensors(final_a), tensors(final_b), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_a, grads_b, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-11)


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_matches_stepping_from_the_initial_state(memory: str) -> None:
    model = build(memory)
    inputs = torch.randn(9, 4, 5, dtype=F64)
    compare(model, lambda: (inputs, None))


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_matches_stepping_from_any_state_with_input_gradients(memory: str) -> None:
    """Gradients reach a carried-in state and inputs that require them."""
    model = build(memory)
    torch.manual_seed(1)
    inputs = torch.randn(6, 3, 5, dtype=F64)

    def make() -> tuple[Tensor, ModelState]:
        return inputs.clone().requires_grad_(), random_state(model, 3)

    compare(model, make)


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_one_step_and_batch_of_one(memory: str) -> None:
    model = build(memory)
    inputs = torch.randn(1, 1, 5, dtype=F64)
    compare(model, lambda: (inputs, None))


def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    seen: list[int] = []
    apply = LSTMMemorySequence.apply

    def counted(*args: object) -> object:
        seen.append(1)
        return apply(*args)

    monkeypatch.setattr(LSTMMemorySequence, "apply", counted)
    return seen


@pytest.mark.parametrize("memory", ["ntm", "dnc"])
def test_training_runs_one_node_per_sequence(memory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = build(memory).float()
    seen = calls(monkeypatch)
    outputs, _ = model(torch.randn(5, 2, 5))
    assert type(outputs.grad_fn).__name__ != "LSTMMemorySequenceBackward"  # the head
    assert len(seen) == 1
    with torch.no_grad():  # evaluation steps as before
        model(torch.randn(5, 2, 5))
    assert len(seen) == 1
    model.compile_runs(4)  # compiled runs take the node too, without compiling
    model(torch.randn(5, 2, 5))
    assert len(seen) == 2


def test_activation_checkpointing_matches(monkeypatch: pytest.MonkeyPatch) -> None:
    model = build("dnc")
    inputs = torch.randn(7, 2, 5, dtype=F64)
    plain, _ = model(inputs)
    expected = torch.autograd.grad(plain.sin().sum(), list(model.parameters()))
    seen = calls(monkeypatch)
    model.recompute_chunk = 3
    chunked, _ = model(inputs)
    got = torch.autograd.grad(chunked.sin().sum(), list(model.parameters()))
    assert len(seen) >= 3  # one node per chunk (and again when recomputed)
    torch.testing.assert_close(chunked, plain, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_declines_what_it_does_not_fuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two LSTM layers, another controller, another addressing, reduced precision,
    autocast and the native kernels off all step one time step at a time."""
    seen = calls(monkeypatch)
    inputs = torch.randn(4, 2, 5, dtype=F64)
    build("ntm", layers=2)(inputs)
    gru_memory = NTMMemory(NTMMemory.Config(slots=7, width=4), ntm_addressing)
    gru = GRUController(GRUController.Config(hidden_size=6), 5 + gru_memory.read_size)
    MemoryModel(gru, gru_memory, 3).double()(inputs)
    plain = NTMMemory(NTMMemory.Config(slots=7, width=4), content)
    lstm = LSTMController(LSTMController.Config(hidden_size=6), 5 + plain.read_size)
    MemoryModel(lstm, plain, 3).double()(inputs)
    build("ntm").bfloat16()(inputs.bfloat16())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        build("dnc").float()(inputs.float())
    monkeypatch.setattr(lstm_sequence, "use_native", lambda *tensors: False)
    build("dnc")(inputs)
    assert seen == []


def test_gradcheck() -> None:
    model = build("ntm", inputs=2, hidden=3)
    inputs = torch.randn(3, 2, 2, dtype=F64, requires_grad=True)
    state = random_state(model, 2)

    def outputs(x: Tensor, *leaves: Tensor) -> Tensor:
        h, c, reads, memory = leaves
        start = ModelState(
            state.controller._replace(hidden=h, cell=c),
            state.memory._replace(memory=memory),
            reads,
        )
        out, final = model(x, start)
        return torch.cat([out.flatten(), final.memory.memory.flatten()])

    leaves = (
        state.controller.hidden,
        state.controller.cell,
        state.reads,
        state.memory.memory,
    )
    assert torch.autograd.gradcheck(outputs, (inputs, *leaves))


def test_dnc_keeps_one_link_per_chunk_of_steps_and_rebuilds_the_others() -> None:
    """11 steps: chunks of ceil(sqrt(11)) = 4 steps, so the node keeps the input links of
    steps 0, 4 and 8 (the one at step 0 is the carried-in link itself); the backward
    pass rebuilds the rest, and every gradient is still the stepped model's."""
    model = build("dnc")
    torch.manual_seed(2)
    inputs = torch.randn(11, 3, 5, dtype=F64)
    state = random_state(model, 3)
    slots = model.memory.slots
    shapes: list[tuple[int, ...]] = []

    def pack(t: Tensor) -> Tensor:
        shapes.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(inputs, state)
    assert shapes.count((3, slots, slots)) == 3
    compare(model, lambda: (inputs, random_state(model, 3)))
