"""The suite's memory experiments from Python: copy (NTM §4.1), associative recall,
priority sort and continual learning (naive against replay), each trained, evaluated
and drawn, with one ``results.md`` setting every metric beside its target.

    python examples/memory_experiments.py --quick              # a smoke test, seconds
    python examples/memory_experiments.py --only copy          # the full copy experiment
    python examples/memory_experiments.py --out runs/memory    # all four, full size (hours)

The same as ``nma experiment NAME``; the configurations are in ``nma/experiments/``.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from nma.experiments import EXPERIMENTS, run_several

MEMORY_EXPERIMENTS = ["copy", "associative", "priority-sort", "continual"]


def parse(
    argv: list[str] | None, names: list[str], stem: str, description: str = ""
) -> argparse.Namespace:
    """The examples' shared options: --quick, --out, --only (repeatable), --device."""
    parser = argparse.ArgumentParser(description=description or __doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-test sizes")
    parser.add_argument("--out", type=Path, help="output directory (new or empty)")
    parser.add_argument("--only", action="append", choices=names, help="run only these")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    args.out = args.out or Path("runs") / f"{stem}-{datetime.now():%Y%m%d-%H%M%S}"
    return args


def report(path: Path, console: Console) -> list[str]:
    """Print the results table of ``results.md`` and return its rows (markdown lines)."""
    rows = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    for line in rows:
        console.print(line, markup=False, highlight=False)
    console.print(f"Wrote {path}", markup=False)
    return rows[2:]  # without the header and its rule


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the memory experiments; returns ``results`` (the path of results.md) and
    ``rows`` (its table rows)."""
    args = parse(argv, MEMORY_EXPERIMENTS, "memory-experiments")
    names = args.only or MEMORY_EXPERIMENTS
    console = Console()
    path = run_several(
        names, args.out, "Memory experiments", args.quick, args.device, console=Console(stderr=True)
    )
    return {"results": path, "rows": report(path, console), "experiments": names}


assert set(MEMORY_EXPERIMENTS) <= set(EXPERIMENTS)

if __name__ == "__main__":
    main()
