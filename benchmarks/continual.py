"""Continual-learning benchmark: run ``nma continual`` through the real CLI and record
its comparison table with every method's accuracy matrix.

Usage::

    python benchmarks/continual.py NAME -- [nma continual options]

Writes ``benchmarks/results/NAME.md`` (the command, the machine, the table of ACC,
BWT, FWT and average forgetting per method, each method's matrix R and the untrained
accuracies b, the wall time) and ``NAME.json`` (``comparison.json`` of the run).
"""

from __future__ import annotations

import json
import shlex
import sys
import tempfile
from pathlib import Path

from machine import machine
from nma_command import run_nma, split_argv

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv: list[str]) -> int:
    parsed = split_argv(argv)
    if parsed is None:
        print(__doc__)
        return 2
    name, args = parsed
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cmp"
        proc, wall = run_nma("continual", args, out)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
            return proc.returncode
        table = (out / "comparison.md").read_text().split("\n", 3)[-1]
        data = json.loads((out / "comparison.json").read_text())
    shown = "nma continual " + " ".join(shlex.quote(a) for a in args)
    lines = [
        f"# {name}",
        "",
        f"Command: `{shown}`",
        "",
        f"Machine: {machine()}; wall time {wall:.0f} s for every method, one after another.",
        "",
        table.strip(),
        "",
        "ACC: final accuracy averaged over experiences; BWT, FWT: backward and forward "
        "transfer (Lopez-Paz & Ranzato 2017); forgetting: average forgetting (Chaudhry "
        "et al. 2018). See docs/continual.md.",
        "",
        "## Accuracy matrices",
        "",
    ]
    for method, record in data["matrices"].items():
        names = record["experiences"]
        lines += [f"### {method}", "", "| after | " + " | ".join(names) + " |"]
        lines.append("| --- |" + " ---: |" * len(names))
        if record["initial_accuracy"] is not None:
            cells = " | ".join(f"{v:.3f}" for v in record["initial_accuracy"])
            lines.append(f"| untrained (b) | {cells} |")
        for i, row in enumerate(record["accuracy_matrix"]):
            label = "all (joint)" if record["joint"] else names[i]
            lines.append(f"| {label} | " + " | ".join(f"{v:.3f}" for v in row) + " |")
        lines.append("")
    for m in data["methods"]:
        m.pop("run_dir", None)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text("\n".join(lines), encoding="utf-8")
    data["command"], data["machine"], data["wall_seconds"] = shown, machine(), round(wall, 1)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines[: 8 + table.count("\n")]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
