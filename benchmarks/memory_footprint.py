"""Peak memory of one training step, with and without activation checkpointing.

Usage::

    python benchmarks/memory_footprint.py [--device cpu|cuda] [--record NAME]

Each configuration runs in a fresh process: an LSTM controller (100 units) with
the given memory on a copy batch (8-bit vectors, length 20, so 41 steps), one
forward + backward + Adam step. On the CPU the figure is the growth of the
process's peak resident set size during the step (``ru_maxrss``, which includes
everything the step allocated); on CUDA, ``torch.cuda.max_memory_allocated``.
The dense link matrix alone that a DNC would store for the backward pass is
printed beside it: ``4 · B · N² · 41`` bytes in float32.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

from machine import machine

RESULTS = Path(__file__).resolve().parent / "results"
CONFIGS = [
    # memory, slots, batch, recompute_chunk
    ("dnc", 2048, 8, 0),
    ("dnc", 2048, 8, 7),
    ("dnc", 2048, 8, 6),
    ("dnc", 2048, 8, 3),
    ("sdnc", 65536, 8, 0),
]


def measure(memory: str, slots: int, batch: int, chunk: int, device: str) -> dict[str, float]:
    """Runs in the child process."""
    import torch

    from nma.build import build_components
    from nma.config import build_raw, resolve
    from nma.registry import get_registry

    registry = get_registry()
    raw = build_raw(
        None,
        {"components.memory": memory, "components.controller": "lstm"},
        [f"memory.slots={slots}", "memory.width=20", "task.width=8"],
    )
    torch.manual_seed(0)
    parts = build_components(resolve(raw, registry), registry)
    model = parts.model.to(device)
    model.recompute_chunk = chunk
    task = parts.task
    batch_data = task.sample(batch, 20, 20, torch.Generator().manual_seed(0)).to(device)
    optimizer = torch.optim.Adam(model.parameters())
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    outputs = model(batch_data.inputs)[0]  # as the trainer: the final state is not kept
    task.loss(outputs, batch_data).backward()
    optimizer.step()
    if device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - before
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    return {"peak_bytes": float(peak)}


def torch_device(name: str):  # noqa: ANN201 - torch is imported here only
    import torch

    return torch.device(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--record", default=None)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for --record")
    parser.add_argument(
        "--rows", type=int, nargs="+", default=None, help="measure only these rows (from 0)"
    )
    parser.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        memory, slots, batch, chunk = args.child
        print(json.dumps(measure(memory, int(slots), int(batch), int(chunk), args.device)))
        return 0
    header = (
        "| memory | slots | batch | recompute_chunk | peak step memory | dense link for backward |"
    )
    rows = [header, "| --- | --- | --- | --- | --- | --- |"]
    print(rows[0])
    chosen = [CONFIGS[i] for i in args.rows] if args.rows else CONFIGS
    for memory, slots, batch, chunk in chosen:
        proc = subprocess.run(
            [sys.executable, __file__, "--device", args.device, "--child", memory,
             str(slots), str(batch), str(chunk)],
            capture_output=True, text=True,
        )  # fmt: skip
        if proc.returncode != 0:
            peak = "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
        else:
            peak = f"{json.loads(proc.stdout.splitlines()[-1])['peak_bytes'] / 2**30:.2f} GiB"
        dense = 4 * batch * slots**2 * 41 / 2**30
        row = f"| {memory} | {slots} | {batch} | {chunk} | {peak} | {dense:,.1f} GiB |"
        rows.append(row)
        print(row, flush=True)
    if args.record:
        args.results.mkdir(parents=True, exist_ok=True)
        text = [
            f"# Peak memory of a training step ({args.device})",
            "",
            f"Command: `python benchmarks/memory_footprint.py --device {args.device} "
            f"--record {args.record}`",
            "",
            f"Machine: {machine(torch_device(args.device))}",
            "",
            "LSTM controller (100 units), memory width 20, copy batch of length 20 "
            "(41 steps), one forward + backward + Adam step, each row in a fresh process.",
            "",
            *rows,
            "",
        ]
        (args.results / f"{args.record}.md").write_text("\n".join(text), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
