"""Whole-step CUDA graphs: the bookkeeping around capture, tested on the CPU.

A real capture needs a GPU (checked on a device machine, see benchmarks/). Here a
stand-in backend behaves as a capture does: capturing records the step without
changing the model or the optimiser, and each replay runs the recorded step on the
static inputs, writing into the same output tensors.
"""

from __future__ import annotations

import copy
from functools import partial

import torch
from rich.console import Console

from nma.config import build_raw, resolve
from nma.cuda_graph import GraphedStep, StepResult
from nma.registry import get_registry
from nma.run import RunContext, create_run
from nma.seeding import generator
from nma.trainer import training_step
from tests.helpers import run_nma

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=16", "task.width=3"]


class StandInGraph:
    def __init__(self, fn, result: StepResult) -> None:
        self.fn, self.result = fn, result
        self.replays = 0

    def replay(self) -> None:
        self.replays += 1
        for static, new in zip(self.result, self.fn(), strict=True):
            static.copy_(new.detach())


class StandInBackend:
    """Capture = record without side effects (state restored); replay = run again."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.warmups = 0
        self.captured: list[StandInGraph] = []

    def warmup(self, fn):
        self.warmups += 1
        return fn()

    def capture(self, fn):
        model, optimizer = self.run.model, self.run.optimizer
        saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        result = tuple(t.detach().clone() for t in fn())
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
        graph = StandInGraph(fn, result)
        self.captured.append(graph)
        return graph, result


def make_run(tmp_path, name: str) -> RunContext:
    options = [
        *SMALL,
        "task.max_length=3",
        "train.device='cpu'",
        f"train.out_dir='{tmp_path / name}'",
    ]
    registry = get_registry()
    return create_run(
        resolve(build_raw(None, {}, options), registry), registry, Console(quiet=True)
    )


def test_graphed_steps_follow_the_eager_trajectory(tmp_path):
    eager, graphed = make_run(tmp_path, "eager"), make_run(tmp_path, "graphed")
    backend = StandInBackend(graphed)
    step = GraphedStep(partial(training_step, graphed), backend)
    stream = eager.parts.task.batches("train", 4, generator(0, "graph-test"))
    losses = []
    for _ in range(12):
        batch = next(stream)
        want_loss, want_out = training_step(eager, batch)
        got_loss, got_out = step(batch)
        losses.append(float(got_loss.detach()))
        assert torch.allclose(got_loss, want_loss, atol=1e-6)
        assert torch.allclose(got_out, want_out, atol=1e-5)
    for a, b in zip(eager.model.parameters(), graphed.model.parameters(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    # sequences of 1..3 items: 3 shapes, each warmed up once, then captured once
    lengths = {tuple(g.result[1].shape) for g in backend.captured}
    assert step.graphs == len(backend.captured) == len(lengths)
    assert backend.warmups == step.graphs or backend.warmups == step.graphs + 1
    assert sum(g.replays for g in backend.captured) == 12 - backend.warmups
    assert len(set(losses)) > 1  # the replays really ran new batches


def test_a_replay_reads_the_new_batch(tmp_path):
    run = make_run(tmp_path, "reads")
    seen: list[torch.Tensor] = []

    def step(batch) -> StepResult:
        seen.append(batch.inputs.clone())
        return batch.inputs.sum(), batch.inputs * 2

    graphed = GraphedStep(step, StandInBackend(run))
    stream = run.parts.task.batches("train", 2, generator(1, "graph-test"))
    batches = []
    while len(batches) < 3:
        b = next(stream)
        if not batches or b.inputs.shape == batches[0].inputs.shape:
            batches.append(b)
    graphed(batches[0])  # warm-up
    graphed(batches[1])  # capture + replay
    _, out = graphed(batches[2])  # replay on the copied inputs
    assert torch.equal(out, batches[2].inputs * 2)
    assert graphed.graphs == 1


def test_cuda_graph_needs_a_gpu(tmp_path):
    result = run_nma(
        "run", "--cuda-graph", "--device", "cpu", "--steps", "1", "--out", str(tmp_path / "r")
    )
    assert result.code == 2
    assert "train.cuda_graph" in result.stderr and "device cpu" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "r" / "checkpoints").exists()
