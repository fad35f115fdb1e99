"""Long-run numerical stability of every registered memory.

Usage: ``python benchmarks/stability.py [--steps 10000] [--batch 8] [--only NAME ...]``

Each memory, with its default options, is stepped ``--steps`` times in float32 on
random interface vectors (standard normal × 3, so gates saturate and keys are
large), carrying its state across the whole run and detaching it every 100 steps.
Every 100-step chunk is also back-propagated from a random projection of its
reads. The run fails for a memory if any read, state tensor or gradient is NaN or
infinite. Results go to ``benchmarks/results/stability.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from machine import machine

from nma.build import build_memory
from nma.registry import get_registry
from nma.state import detach_state, map_state

RESULTS = Path(__file__).resolve().parent / "results"
CHUNK = 100


def all_finite(state: object) -> bool:
    flags: list[bool] = []
    map_state(lambda t: flags.append(bool(torch.isfinite(t).all())) or t, state)
    return all(flags)


def check(name: str, steps: int, batch: int) -> dict[str, object]:
    torch.manual_seed(0)
    memory = build_memory(name)
    state = memory.initial_state(batch, torch.device("cpu"), torch.float32)
    largest = 0.0
    start = time.perf_counter()
    done = 0
    while done < steps:
        state = detach_state(state)
        total = torch.zeros(())
        for _ in range(min(CHUNK, steps - done)):
            interface = (torch.randn(batch, memory.interface_size) * 3).requires_grad_()
            reads, state = memory(interface, state)
            total = total + (reads * torch.randn_like(reads)).sum()
            done += 1
        memory.zero_grad()
        total.backward()
        grads_ok = all(
            p.grad is None or bool(torch.isfinite(p.grad).all()) for p in memory.parameters()
        )
        largest = max(largest, float(reads.detach().abs().max()))
        if not (torch.isfinite(total) and grads_ok and all_finite(state)):
            return {"name": name, "steps": done, "finite": False, "max_read": largest,
                    "seconds": time.perf_counter() - start}  # fmt: skip
    return {"name": name, "steps": done, "finite": True, "max_read": largest,
            "seconds": time.perf_counter() - start}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--only", nargs="*", default=None)
    args = parser.parse_args()
    names = args.only or get_registry().names("memory")
    rows = []
    for name in names:
        row = check(name, args.steps, args.batch)
        rows.append(row)
        print(
            f"{name:14s} steps {row['steps']:6d}  finite {row['finite']!s:5s}  "
            f"max |read| {row['max_read']:.3g}  {row['seconds']:.0f} s",
            flush=True,
        )
    command = "python benchmarks/stability.py " + " ".join(sys.argv[1:])
    lines = [
        "# Long-run stability (float32)",
        "",
        f"Command: `{command.strip()}`",
        "",
        f"Machine: {machine()}",
        "",
        f"{args.steps} steps per memory, batch {args.batch}, default options, random "
        "interface vectors N(0, 9), state carried throughout (detached every 100 steps), "
        "every 100-step chunk back-propagated.",
        "",
        "| memory | steps | all finite | max abs read | seconds |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['name']} | {row['steps']} | {'yes' if row['finite'] else 'NO'} | "
            f"{row['max_read']:.3g} | {row['seconds']:.0f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    if args.only is None:
        (RESULTS / "stability.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0 if all(row["finite"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
