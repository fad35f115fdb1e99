"""Test helpers: the real ``nma`` command and throwaway plugin distributions."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

NMA = str(Path(sys.executable).parent / "nma")


@dataclass
class Result:
    """What a CLI invocation returned."""

    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_nma(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 300
) -> Result:
    """Run the installed ``nma`` console script, as a user would."""
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    full_env.pop("NMA_DEBUG", None)
    proc = subprocess.run(
        [NMA, *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def make_distribution(
    root: Path, dist: str, module: str, source: str, entry_points: dict[str, str] | None = None
) -> Path:
    """Write a throwaway installed distribution into ``root`` (a ``sys.path`` entry).

    It is found by ``importlib.metadata`` through a real ``.dist-info`` folder with
    ``METADATA`` and ``entry_points.txt``, exactly as a pip-installed package is.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(source), encoding="utf-8")
    info = root / f"{dist.replace('-', '_')}-0.3.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.3.1\n", encoding="utf-8"
    )
    eps = entry_points or {module: module}
    lines = "\n".join(f"{name} = {target}" for name, target in eps.items())
    (info / "entry_points.txt").write_text(f"[nma]\n{lines}\n", encoding="utf-8")
    return root


def env_with_path(path: Path) -> dict[str, str]:
    """Environment that makes ``path``'s distributions visible to a child ``nma``."""
    existing = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": str(path) + (os.pathsep + existing if existing else "")}


TINY = [
    "--set", "memory.slots=12",
    "--set", "memory.width=6",
    "--set", "controller.hidden_size=24",
    "--set", "task.width=4",
    "--set", "task.max_length=4",
    "--set", "task.eval_size=16",
    "--set", "train.batch_size=4",
    "--set", "train.eval_every=10",
    "--set", "train.checkpoint_every=10",
    "--set", "train.log_every=5",
    "--set", "train.eval_batch_size=8",
    "--device", "cpu",
    "--no-progress",
]  # fmt: skip
"""CLI options for a run that takes a few seconds."""
