"""Running ``nma`` through its real command line for a recorded benchmark."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def split_argv(argv: list[str]) -> tuple[str, list[str]] | None:
    """``NAME -- [nma options]`` as ``(NAME, options)``; ``None`` if not of that form."""
    if "--" not in argv or argv.index("--") != 1:
        return None
    return argv[0], argv[2:]


def run_nma(
    subcommand: str, args: list[str], out: Path
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run ``nma SUBCOMMAND ARGS --no-progress --out OUT`` (the ``nma`` beside this
    Python); return the finished process and its wall time in seconds."""
    nma = str(Path(sys.executable).parent / "nma")
    command = [nma, subcommand, *args, "--no-progress", "--out", str(out)]
    start = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True)
    return proc, time.perf_counter() - start
