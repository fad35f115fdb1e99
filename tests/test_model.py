"""Assembly of any registered memory × controller, and a short copy run that learns."""

from __future__ import annotations

import pytest
import torch
from rich.console import Console

from nma.build import build_components
from nma.config import build_raw, resolve
from nma.model import MemoryModel, ModelState
from nma.registry import get_registry
from nma.run import create_run
from nma.state import detach_state
from nma.trainer import evaluate, train

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=16", "task.width=3"]


@pytest.mark.parametrize("memory", get_registry().names("memory"))
@pytest.mark.parametrize("controller", get_registry().names("controller"))
def test_every_memory_and_controller_assemble(memory, controller):
    registry = get_registry()
    raw = build_raw(
        None,
        {"components.memory": memory, "components.controller": controller},
        ["controller.hidden_size=16", "task.width=3"],
    )
    parts = build_components(resolve(raw, registry), registry)
    model = parts.model
    assert isinstance(model, MemoryModel)
    inputs = torch.randn(5, 2, parts.task.input_size)
    outputs, state = model(inputs)
    assert outputs.shape == (5, 2, parts.task.output_size)
    assert isinstance(state, ModelState)
    assert state.reads.shape == (2, model.memory.read_size)
    outputs.sum().backward()
    assert all(p.grad is not None for p in model.head.parameters())
    # state can be carried on (truncated BPTT) after detaching
    more, _ = model(inputs, detach_state(state))
    assert more.shape == outputs.shape


def test_step_by_step_equals_whole_sequence():
    registry = get_registry()
    torch.manual_seed(0)
    parts = build_components(resolve(build_raw(None, {}, SMALL), registry), registry)
    model = parts.model
    inputs = torch.randn(4, 3, parts.task.input_size)
    whole, _ = model(inputs)
    state = model.initial_state(3)
    for t in range(4):
        out, state = model.step(inputs[t], state)
        assert torch.allclose(out, whole[t])


def test_a_short_copy_run_learns(tmp_path):
    torch.manual_seed(0)
    registry = get_registry()
    options = [
        *SMALL,
        "task.max_length=3",
        "task.eval_size=64",
        "train.steps=250",
        "train.batch_size=8",
        "train.lr=0.005",
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "train.device='cpu'",
        f"train.out_dir='{tmp_path / 'run'}'",
    ]
    config = resolve(build_raw(None, {}, options), registry)
    run = create_run(config, registry, Console(quiet=True))
    before = evaluate(run.model, run.parts.task, 64, run.device)
    after = train(run, show_progress=False)
    assert after["loss"] < 0.8 * before["loss"]
    assert after["bit_errors"] < 0.7 * before["bit_errors"]


@pytest.mark.parametrize("chunk", [1, 3, 7])
def test_recompute_chunks_give_the_same_gradients(chunk):
    registry = get_registry()
    torch.manual_seed(0)
    parts = build_components(resolve(build_raw(None, {}, SMALL), registry), registry)
    model = parts.model.double()
    inputs = torch.randn(7, 2, parts.task.input_size, dtype=torch.float64)

    def gradients() -> tuple[torch.Tensor, list[torch.Tensor]]:
        model.zero_grad()
        outputs, _ = model(inputs)
        (outputs**2).sum().backward()
        return outputs.detach(), [p.grad.clone() for p in model.parameters()]

    model.recompute_chunk = 0
    expected_out, expected = gradients()
    model.recompute_chunk = chunk
    got_out, got = gradients()
    # Equal up to rounding: a sequence of LSTM and NTM runs as one node
    # (lstm_sequence.py) that multiplies a whole chunk's inputs in one product.
    torch.testing.assert_close(got_out, expected_out, rtol=1e-13, atol=1e-15)
    for a, b in zip(expected, got, strict=True):
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-12)


def _short_run(tmp_path, name: str, *extra: str) -> dict[str, float]:
    registry = get_registry()
    options = [
        *SMALL,
        "task.max_length=3",
        "task.eval_size=16",
        "train.steps=4",
        "train.batch_size=4",
        "train.eval_every=0",
        "train.checkpoint_every=0",
        "train.device='cpu'",
        f"train.out_dir='{tmp_path / name}'",
        *extra,
    ]
    run = create_run(resolve(build_raw(None, {}, options), registry), registry, Console(quiet=True))
    final = train(run, show_progress=False)
    final["weights"] = torch.cat([p.detach().flatten() for p in run.model.parameters()])
    return final


def test_bf16_mixed_precision_stays_close_to_fp32(tmp_path):
    fp32 = _short_run(tmp_path, "fp32")
    bf16 = _short_run(tmp_path, "bf16", "train.precision='bf16'")
    assert abs(bf16["loss"] - fp32["loss"]) < 0.02  # bf16 keeps ~3 significant digits
    assert torch.allclose(bf16["weights"], fp32["weights"], atol=5e-3)
    assert not torch.equal(bf16["weights"], fp32["weights"])  # autocast really ran


def test_compiled_step_matches_eager(tmp_path, monkeypatch):
    real_compile = torch.compile
    # Dynamo tracing and AOT autograd, without Inductor's C++ code generation (minutes on
    # 2 cores): the graph nma hands to the compiler is what this test checks.
    monkeypatch.setattr(
        torch, "compile", lambda fn, **kw: real_compile(fn, **{**kw, "backend": "aot_eager"})
    )
    eager = _short_run(tmp_path, "eager")
    compiled = _short_run(tmp_path, "compiled", "train.compile=true")
    assert abs(compiled["loss"] - eager["loss"]) < 1e-5
    assert torch.allclose(compiled["weights"], eager["weights"], atol=1e-5)


def test_compiled_runs_cut_the_sequence_and_match_eager():
    """Runs of ``steps`` steps through one graph, the remainder one step at a time (for
    a memory that does not run the sequence itself: here the NTM, told not to)."""
    registry = get_registry()
    torch.manual_seed(0)
    parts = build_components(resolve(build_raw(None, {}, SMALL), registry), registry)
    model = parts.model.double()
    model.memory.run_with_controller = lambda *args: None
    inputs = torch.randn(8, 2, parts.task.input_size, dtype=torch.float64)
    expected, _ = model(inputs)
    (expected**2).sum().backward()
    expected_grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()

    model.compile_runs(3, backend="aot_eager")
    lengths = []
    compiled_run = model._compiled_run

    def counting(chunk, state):
        lengths.append(chunk.shape[0])
        return compiled_run(chunk, state)

    model._compiled_run = counting
    got, _ = model(inputs)
    (got**2).sum().backward()
    assert lengths == [3, 3, 1, 1]
    assert torch.allclose(got, expected, atol=1e-12)
    for p, want in zip(model.parameters(), expected_grads, strict=True):
        assert torch.allclose(p.grad, want, atol=1e-12)
    with pytest.raises(ValueError, match="at least one step"):
        model.compile_runs(0)
