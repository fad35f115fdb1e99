"""An interrupted and resumed run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import TINY, env_with_path, make_distribution, run_nma

STOPPER = """
import os
from nma import hookimpl

@hookimpl
def nma_train_step(run, step, metrics):
    if step == int(os.environ.get("NMA_TEST_STOP_AT", "0")):
        if os.environ.get("NMA_TEST_STOP_MODE") == "raise":
            raise RuntimeError("the logger crashed")
        run.request_stop()
"""

STEPS = ["--steps", "30", "--seed", "7"]


def metrics(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


def final_state(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "checkpoints" / "step-00000030.safetensors"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    result = run_nma("run", *TINY, *STEPS, "--out", str(out))
    assert result.code == 0, result.output
    return out


@pytest.mark.parametrize(("mode", "code"), [("raise", 1), ("stop", 130)])
def test_interrupted_run_resumes_to_the_same_result(reference, tmp_path, mode, code):
    site = make_distribution(tmp_path / "site", "stopper-nma", f"stopper_{mode}", STOPPER)
    env = env_with_path(site)
    out = tmp_path / "run"
    interrupted = run_nma(
        "run",
        *TINY,
        *STEPS,
        "--out",
        str(out),
        env={**env, "NMA_TEST_STOP_AT": "15", "NMA_TEST_STOP_MODE": mode},
    )
    assert interrupted.code == code, interrupted.output
    assert "Traceback" not in interrupted.output
    assert "--resume" in interrupted.output
    if mode == "raise":
        assert "the logger crashed" in interrupted.output
        assert "stopper_raise" in interrupted.output  # the plugin is named
    assert (out / "checkpoints" / "step-00000015.safetensors").exists()
    assert max(r["step"] for r in metrics(out)) == 15

    resumed = run_nma("run", "--resume", str(out), "--no-progress", env=env)
    assert resumed.code == 0, resumed.output
    assert "Resuming" in resumed.output and "at step 15" in resumed.output

    assert metrics(out) == metrics(reference)
    expected, got = final_state(reference), final_state(out)
    assert expected.keys() == got.keys()
    for key in expected:
        assert torch.equal(expected[key], got[key]), key
    assert json.loads((out / "summary.json").read_text()) == json.loads(
        (reference / "summary.json").read_text()
    )


def test_resume_can_extend_a_finished_run(reference, tmp_path):
    import shutil

    out = tmp_path / "extended"
    shutil.copytree(reference, out)
    result = run_nma("run", "--resume", str(out), "--steps", "40", "--no-progress")
    assert result.code == 0, result.output
    assert max(r["step"] for r in metrics(out)) == 40
    assert "steps = 40" in (out / "config.toml").read_text()
