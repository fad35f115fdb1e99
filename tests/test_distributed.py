"""``torchrun --nproc-per-node 2 -m nma run`` with DDP over gloo on the CPU."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from nma.distributed import World
from nma.trainer import data_stream
from tests.helpers import TINY, env_with_path, make_distribution, run_nma

STOPPER = """
from nma import hookimpl

@hookimpl
def nma_train_step(run, step, metrics):
    if step == 6:
        run.request_stop()
"""


def torchrun(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--standalone", "-m", "nma", *args,
    ]  # fmt: skip
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200", **(env or {})}
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,  # so a hang can be killed with every worker
    )
    try:
        stdout, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return subprocess.CompletedProcess(command, proc.returncode, stdout, stderr)


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_each_rank_draws_its_own_data():
    names = {data_stream(World(rank=r, local_rank=r, size=2)) for r in range(2)}
    assert len(names) == 2
    assert data_stream(World()) == "train-data"  # a single process keeps its stream


def test_two_processes_train_write_once_and_resume(tmp_path):
    site = make_distribution(tmp_path / "site", "stop-nma", "ddp_stopper", STOPPER)
    out = tmp_path / "ddp"
    first = torchrun(
        "run", *TINY, "--steps", "12", "--seed", "3", "--out", str(out), env=env_with_path(site)
    )
    assert first.returncode != 0  # stopped at step 6, exit 130, on every rank
    assert first.stderr.count("Stopped at step 6; checkpoint saved") == 1, first.stderr
    assert (out / "checkpoints" / "step-00000006.safetensors").exists()
    assert json.loads((out / "run.json").read_text())["processes"] == 2

    resumed = torchrun("run", "--resume", str(out), "--no-progress")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    steps = [r["step"] for r in records(out) if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 12  # rank 0 alone wrote, once
    assert [r["step"] for r in records(out) if r["split"] == "eval"] == [10, 12]

    single = tmp_path / "single"
    assert run_nma("run", *TINY, "--steps", "12", "--seed", "3", "--out", str(single)).code == 0
    ddp_weights = load_file(str(out / "checkpoints" / "step-00000012.safetensors"))
    one_weights = load_file(str(single / "checkpoints" / "step-00000012.safetensors"))
    head = "model/head.weight"
    assert not torch.equal(ddp_weights[head], one_weights[head])  # two ranks, other data
