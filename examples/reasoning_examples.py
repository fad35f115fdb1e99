"""The suite's reasoning experiments from Python: logical inference, temporal
reasoning, knowledge graphs (synthetic queries and link prediction on Nations) and the
20 bAbI tasks, each trained, evaluated and drawn, with one ``results.md`` setting every
metric beside its target.

    python examples/reasoning_examples.py --quick              # a smoke test, seconds
    python examples/reasoning_examples.py --only babi          # bAbI 1k, full size
    python examples/reasoning_examples.py --out runs/reasoning # all four, full size (hours)

The same as ``nma experiment NAME``; the configurations are in ``nma/experiments/``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from nma.experiments import EXPERIMENTS, run_several

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory_experiments import parse, report  # noqa: E402

REASONING_EXPERIMENTS = ["logical", "temporal", "knowledge", "babi"]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the reasoning experiments; returns ``results`` (the path of results.md) and
    ``rows`` (its table rows)."""
    args = parse(argv, REASONING_EXPERIMENTS, "reasoning-experiments", __doc__.splitlines()[0])
    names = args.only or REASONING_EXPERIMENTS
    console = Console()
    path = run_several(
        names,
        args.out,
        "Reasoning experiments",
        args.quick,
        args.device,
        console=Console(stderr=True),
    )
    return {"results": path, "rows": report(path, console), "experiments": names}


assert set(REASONING_EXPERIMENTS) <= set(EXPERIMENTS)

if __name__ == "__main__":
    main()
