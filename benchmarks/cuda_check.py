"""Checks of the CUDA paths that the CPU test suite cannot make, for a GPU machine.

Usage::

    python benchmarks/cuda_check.py [--memories ntm dnc ...] [--modes graph ...]
                                    [--steps 6] [--batch 16] [--record NAME]

For each memory (LSTM controller, copy task, sequences of 20 items), trains
``--steps`` optimiser steps from the same seed on the same batches eagerly and in
each of ``--modes`` and compares the final parameters with the eager float32 run:

- ``graph``: the whole step replayed from CUDA graphs (``nma.cuda_graph``), with
  ``Adam(capturable=True)``: must agree to 1e-4 (float32 reductions in another order);
- ``compiled``: ``MemoryModel.compile_runs(8)``: must agree to 1e-4;
- ``compiled-graph``: both (the compiled kernels captured in the graph): 1e-4;
- ``bf16``: autocast with bfloat16: must agree to 5e-2 (about 3 significant digits).

Prints one line per memory and mode; exits 1 if any disagrees or fails. Run it
before ``python benchmarks/speed.py --device cuda --modes eager compiled graph``.
"""

from __future__ import annotations

import argparse
import sys
import time
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
TOLERANCE = {"graph": 1e-4, "compiled": 1e-4, "compiled-graph": 1e-4, "bf16": 5e-2}
GRAPHED = ("graph", "compiled-graph")


def train(name: str, mode: str, steps: int, batch: int, device: torch.device) -> torch.Tensor:
    """The flattened parameters after ``steps`` optimiser steps in ``mode``."""
    registry = get_registry()
    raw = build_raw(
        None,
        {"components.memory": name, "components.controller": "lstm"},
        ["task.min_length=20", "task.max_length=20"],  # one shape: captured from step 2
    )
    torch.manual_seed(0)
    parts = build_components(resolve(raw, registry), registry)
    model = parts.model.to(device)
    if mode in ("compiled", "compiled-graph"):
        torch._dynamo.reset()
        model.compile_runs(8)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=mode in GRAPHED)

    def step(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        bf16 = mode == "bf16"
        with torch.autocast(device.type, torch.bfloat16, enabled=bf16, cache_enabled=False):
            outputs = model(batch.inputs)[0]
            loss = parts.task.loss(outputs.float(), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        return loss, outputs

    run = GraphedStep(step) if mode in GRAPHED else step
    stream = parts.task.batches("train", batch, generator(0, "cuda-check"))
    for _ in range(steps):
        run(next(stream).to(device))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", nargs="+", default=get_registry().names("memory"))
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the other modes")
    parser.add_argument("--modes", nargs="+", default=list(TOLERANCE), choices=list(TOLERANCE))
    parser.add_argument("--record", default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for --record")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check", file=sys.stderr)
        return 2
    if device.type != "cuda" and set(args.modes) & set(GRAPHED):
        print("CUDA graphs need --device cuda", file=sys.stderr)
        return 2
    lines, failed = [], False
    for name in args.memories:
        start = time.perf_counter()
        reference = train(name, "eager", args.steps, args.batch, device)
        for mode in args.modes:
            tolerance = TOLERANCE[mode]
            try:
                got = train(name, mode, args.steps, args.batch, device)
                diff = (got - reference).abs().max().item()
                ok = diff <= tolerance
                line = f"{name:14s} {mode:9s} max |diff| {diff:.2e} (<= {tolerance:g}): " + (
                    "ok" if ok else "DISAGREES"
                )
            except Exception as exc:  # noqa: BLE001 - every failure is reported, then exit 1
                ok = False
                line = f"{name:14s} {mode:9s} FAILED: {type(exc).__name__}: {exc}".splitlines()[0]
            failed |= not ok
            lines.append(line)
            print(line, flush=True)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    if args.record:
        args.results.mkdir(parents=True, exist_ok=True)
        command = "python benchmarks/cuda_check.py " + " ".join(sys.argv[1:])
        text = [
            "# CUDA path checks",
            "",
            f"Command: `{command}`",
            "",
            f"Machine: {machine(device)}",
            "",
            "```",
            *lines,
            "```",
            "",
        ]
        (args.results / f"{args.record}.md").write_text("\n".join(text), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
