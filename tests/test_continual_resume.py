"""A stream run stopped mid-experience resumes to exactly the uninterrupted result,
regularizer state included; and ContinualExperiment from Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors.torch import load_file

from nma import ContinualExperiment, UsageError
from nma.config import build_raw, resolve
from nma.registry import get_registry
from nma.run import create_run, resume_run
from nma.trainer import StopRequested, train
from tests.continual_helpers import STREAM, options

REGULARIZERS = ["si", "replay", "agem", "online-ewc"]
SETTINGS = [*options(STREAM), "regularizer.online-ewc.samples=4", "train.seed=5"]


def start(out: Path):
    registry = get_registry()
    shortcuts = {
        "components.task": "permuted-digits",
        "components.memory": "ntm",
        "components.regularizer": REGULARIZERS,
        "train.out_dir": str(out),
    }
    raw = build_raw(None, shortcuts, [*SETTINGS, "train.device='cpu'"])
    return create_run(resolve(raw, registry), registry, Console(quiet=True))


def final(out: Path) -> dict[str, torch.Tensor]:
    return load_file(str(out / "checkpoints" / "step-00000018.safetensors"))


def test_a_stream_resumes_mid_experience_to_the_same_result(tmp_path):
    reference = start(tmp_path / "ref")
    train(reference, show_progress=False)

    run = start(tmp_path / "cut")
    hook = run.call_hook

    def stop_at_8(name: str, **kwargs) -> None:
        hook(name, **kwargs)
        if name == "nma_train_step" and kwargs["step"] == 8:  # inside experience 1
            run.request_stop()

    run.call_hook = stop_at_8  # type: ignore[method-assign]
    with pytest.raises(StopRequested):
        train(run, show_progress=False)
    assert run.continual is not None and len(run.continual.rows) == 1
    torch.manual_seed(999)  # a resumed process starts from other generator states
    resumed = resume_run(tmp_path / "cut", get_registry(), Console(quiet=True), {})
    assert resumed.step == 8 and len(resumed.continual.rows) == 1
    train(resumed, show_progress=False)

    for name in ("continual.json", "metrics.jsonl", "summary.json"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "ref" / name).read_text(), name
    expected, got = final(tmp_path / "ref"), final(tmp_path / "cut")
    assert expected.keys() == got.keys()
    assert any(k.startswith("regularizer/si/omega/") for k in got)
    for key in expected:
        assert torch.equal(expected[key], got[key]), key


def test_continual_learning_model_from_python(tmp_path):
    sections: dict = {}
    for item in SETTINGS:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        if section in ("memory", "controller", "task", "train"):
            sections.setdefault(section, {})[name] = json.loads(value)
    sections["train"]["device"] = "cpu"
    model = ContinualExperiment(
        task="permuted-digits",
        memory="ntm",
        controller="lstm",
        regularizers=["mas", "gem"],
        options={**sections, "regularizer": {"mas": {"samples": 4}, "gem": {"memory_size": 8}}},
        out_dir=tmp_path / "py",
    )
    record = model.fit()
    assert record.complete and len(record.rows) == 3
    assert set(record.summary()) == {"acc", "bwt", "fwt", "forgetting"}
    assert len(model.regularizers["gem"].memories) == 3
    assert (tmp_path / "py" / "continual.json").exists()
    with pytest.raises(UsageError, match="not a stream"):
        ContinualExperiment(task="copy")
