"""Learning benchmark: run ``nma run`` through the real CLI and record its curve.

Usage::

    python benchmarks/learning_curve.py NAME [--keep DIR] -- [nma run options]
    python benchmarks/learning_curve.py copy-ntm-lstm -- --memory ntm --controller lstm --task copy

Runs the command in a fresh run directory, times it, and writes
``benchmarks/results/NAME.md`` (the command, the machine, the held-out curve of
the task's metrics against the step, the wall time) and ``NAME.json`` (the same
as data), with the training curve: the logged training batches' loss and accuracy
averaged over each window between two evaluations, the figure the End-to-End Memory
Networks paper selects its best run by ("the lowest training error"). The run
directory is temporary unless ``--keep DIR`` names a new directory to run in, which
then stays, checkpoints included (for ``nma plot``, ``benchmarks/babi_hops.py`` or a
later evaluation of the final model).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import tempfile
from pathlib import Path

from machine import machine
from nma_command import run_nma, split_argv

RESULTS = Path(__file__).resolve().parent / "results"


def training_windows(records: list[dict], evals: list[dict]) -> list[dict]:
    """Per evaluation, the mean of each logged training metric over the steps since the
    previous evaluation, with ``batches``, how many logged batches it averages. A metric
    some batches lack (bAbI's per-task errors, for tasks a batch did not draw) is the
    mean over the batches that have it."""
    windows, start = [], 0
    for ev in evals:
        batch = [r for r in records if r["split"] == "train" and start < r["step"] <= ev["step"]]
        window: dict = {"step": ev["step"], "batches": len(batch)}
        keys = dict.fromkeys(k for r in batch for k in r if k not in ("step", "split"))
        for key in keys:
            values = [r[key] for r in batch if isinstance(r.get(key), (int, float))]
            if values:
                window[key] = sum(values) / len(values)
        windows.append(window)
        start = ev["step"]
    return windows


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    """The lines of a Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def main(argv: list[str]) -> int:
    keep: Path | None = None
    if len(argv) > 2 and argv[1] == "--keep":
        keep, argv = Path(argv[2]), [argv[0], *argv[3:]]
        if keep.exists():
            print(f"--keep {keep}: it exists already; name a new directory for the run.")
            return 2
    parsed = split_argv(argv)
    if parsed is None:
        print(__doc__)
        return 2
    name, args = parsed
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        proc, wall = run_nma("run", args, run_dir)
        if keep is not None and run_dir.exists():
            shutil.copytree(run_dir, keep)
        if proc.returncode != 0:
            print(proc.stdout + proc.stderr)
            return proc.returncode
        records = [
            json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()
        ]
        summary = json.loads((run_dir / "summary.json").read_text())
        config = (run_dir / "config.toml").read_text()
    evals = [r for r in records if r["split"] == "eval"]
    metrics = [k for k in evals[-1] if k not in ("step", "split")]
    shown = "nma run " + shlex.join(args)
    lines = [
        f"# {name}",
        "",
        f"Command: `{shown}`",
        "",
        f"Recorded by: `python benchmarks/learning_curve.py {name} -- {shlex.join(args)}`",
        "",
        f"Machine: {machine()}",
        "",
        f"Wall time: {wall:.0f} s for {summary['step']} steps "
        f"(training, {len(evals)} evaluations on the held-out split, checkpoints).",
        "",
        "Final held-out evaluation: "
        + ", ".join(f"{k} = {v:.4g}" for k, v in summary["eval"].items()),
        "",
        "Held-out curve:",
        "",
        *markdown_table(
            ["step", *metrics], [[r["step"], *(f"{r[k]:.4g}" for k in metrics)] for r in evals]
        ),
    ]
    train = training_windows(records, evals)
    shown_train = [k for k in ("loss", "accuracy") if train and k in train[-1]]
    if shown_train:
        lines += [
            "",
            "Training curve (the logged training batches, averaged since the evaluation before):",
            "",
            *markdown_table(
                ["step", "batches", *shown_train],
                [[w["step"], w["batches"], *(f"{w[k]:.4g}" for k in shown_train)] for w in train],
            ),
        ]
    lines += ["", "Resolved configuration:", "", "```toml", config.rstrip(), "```", ""]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text("\n".join(lines), encoding="utf-8")
    data = {
        "command": shown,
        "machine": machine(),
        "wall_seconds": wall,
        "curve": evals,
        "train_curve": train,
        "final": summary,
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
