"""Training-step speed of memory models, as a ratio to a plain ``nn.LSTM``.

Usage::

    python benchmarks/speed.py [--device cpu|cuda] [--batch 1 16 64]
                               [--memories ntm dnc sam sdnc kv lrua]
                               [--modes eager compiled graph compiled-graph]
                               [--repeats 20] [--record NAME] [--results DIR]

For each memory, an ``lstm`` controller of 100 units on the copy task (8-bit
vectors, sequences of length 20, so 41 steps; memory 128 slots x 20 unless the
memory's own defaults say otherwise) is timed for one full training step:
forward over the sequence, loss, backward, gradient clipping, Adam step. In the
same process, alternating with it, a plain ``nn.LSTM`` of the same controller
size with a linear output layer is timed on the same batch. The table gives the
median milliseconds of each and their ratio. ``--modes`` picks how the memory model
runs: ``eager``; ``compiled`` (``MemoryModel.compile_runs(8)``: ``torch.compile`` of
runs of 8 steps, as ``--compile`` does); ``graph`` (CUDA only: the whole training
step replayed from a CUDA graph with ``nma.cuda_graph.GraphedStep`` and
``Adam(capturable=True)``, as ``--cuda-graph`` does); ``compiled-graph`` (both: the
compiled runs' kernels replayed from the graph, as ``--compile --cuda-graph``). The
baseline is always the eager ``nn.LSTM`` step. The first calls (compilation, graph
capture) are warm-up, not timed. ``--record NAME`` writes the table to
``NAME.md`` in ``--results`` (``benchmarks/results``) with the machine.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from machine import machine
from torch import nn

from nma.build import build_components
from nma.config import build_raw, resolve
from nma.cuda_graph import GraphedStep
from nma.registry import get_registry
from nma.seeding import generator
from nma.task import Batch

RESULTS = Path(__file__).resolve().parent / "results"
LENGTH = 20
WIDTH = 8
HIDDEN = 100
MEMORY_SIZE = {"slots": 128, "width": 20}
MODES = ["eager", "compiled", "graph", "compiled-graph"]
GRAPHED = ("graph", "compiled-graph")


def copy_batch(batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One copy-task batch with every sequence of length ``LENGTH``."""
    registry = get_registry()
    task_cls = registry.get("task", "copy")
    task = task_cls(task_cls.Config(width=WIDTH, min_length=LENGTH, max_length=LENGTH))
    b = task.sample(batch, LENGTH, LENGTH, generator(0, "speed"))
    return b.inputs.to(device), b.targets.to(device), b.mask.to(device)


def memory_options(name: str) -> dict[str, int]:
    fields = get_registry().get("memory", name).Config.model_fields
    return {k: v for k, v in MEMORY_SIZE.items() if k in fields}


def model_step(name: str, batch: int, device: torch.device, mode: str) -> Callable[[], None]:
    """One training step of ``name`` in ``mode``: eager, compiled or graph (CUDA)."""
    registry = get_registry()
    raw = build_raw(
        None,
        {"components.memory": name, "components.controller": "lstm", "components.task": "copy"},
        [f"controller.hidden_size={HIDDEN}", f"task.width={WIDTH}"]
        + [f"memory.{k}={v}" for k, v in memory_options(name).items()],
    )
    torch.manual_seed(0)
    parts = build_components(resolve(raw, registry), registry)
    model = parts.model.to(device)
    if mode in ("compiled", "compiled-graph"):
        torch._dynamo.reset()  # a fresh cache per model: guards are per model instance
        model.compile_runs(8)
    inputs, targets, mask = copy_batch(batch, device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=mode in GRAPHED)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")

    def train_step(b: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = model(b.inputs)[0]
        loss = (loss_fn(outputs, b.targets) * b.mask.unsqueeze(-1)).sum() / b.mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        return loss, outputs

    run = GraphedStep(train_step) if mode in GRAPHED else train_step
    data = Batch(inputs, targets, mask)

    def step() -> None:
        run(data)

    return step


def lstm_step(batch: int, device: torch.device) -> Callable[[], None]:
    torch.manual_seed(0)
    lstm = nn.LSTM(WIDTH + 1, HIDDEN).to(device)
    head = nn.Linear(HIDDEN, WIDTH).to(device)
    params = [*lstm.parameters(), *head.parameters()]
    inputs, targets, mask = copy_batch(batch, device)
    optimizer = torch.optim.Adam(params, lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss(reduction="none")

    def step() -> None:
        hidden, _ = lstm(inputs)
        loss = (loss_fn(head(hidden), targets) * mask.unsqueeze(-1)).sum() / mask.sum()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()

    return step


def timed(fn: Callable[[], None], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) * 1000


def compare(
    model: Callable[[], None], baseline: Callable[[], None], repeats: int, device: torch.device
) -> tuple[float, float]:
    """Median ms of ``model`` and ``baseline``, timed alternately after warm-up."""
    for _ in range(3):
        model()
        baseline()
    model_ms, base_ms = [], []
    for _ in range(repeats):
        model_ms.append(timed(model, device))
        base_ms.append(timed(baseline, device))
    return statistics.median(model_ms), statistics.median(base_ms)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--memories", nargs="+", default=["ntm", "dnc", "sam", "sdnc", "kv", "lrua"]
    )
    parser.add_argument(
        "--modes",
        nargs="+",
        default=["eager"],
        choices=MODES,
        help="eager; compiled (torch.compile, runs of 8 steps); graph (whole step in a CUDA "
        "graph, CUDA only); compiled-graph (both)",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--record", default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for --record")
    args = parser.parse_args()
    device = torch.device(args.device)
    available = set(get_registry().names("memory"))
    rows = []
    header = "| memory | mode | batch | memory model ms | nn.LSTM ms | ratio |"
    print(header)
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.memories:
        if name not in available:
            print(f"| {name} | (not installed) | | | | |")
            continue
        for mode in args.modes:
            for batch in args.batch:
                step = model_step(name, batch, device, mode)
                ms, base = compare(step, lstm_step(batch, device), args.repeats, device)
                row = f"| {name} | {mode} | {batch} | {ms:.1f} | {base:.2f} | {ms / base:.1f}x |"
                rows.append(row)
                print(row, flush=True)
    if args.record:
        command = "python benchmarks/speed.py " + " ".join(sys.argv[1:])
        text = [
            f"# Training-step speed ({args.device})",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {machine(device)}",
            "",
            f"Copy task, 8-bit vectors, length {LENGTH} ({2 * LENGTH + 1} steps), LSTM "
            f"controller of {HIDDEN} units, memory {MEMORY_SIZE['slots']} x "
            f"{MEMORY_SIZE['width']} where the memory has those options; one training step "
            "= forward, loss, backward, clipping, Adam. Medians, the baseline timed "
            "alternately in the same process.",
            "",
            header,
            "| --- | --- | --- | --- | --- | --- |",
            *rows,
            "",
        ]
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / f"{args.record}.md").write_text("\n".join(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
