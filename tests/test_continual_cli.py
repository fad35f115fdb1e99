"""Stream runs and ``nma continual`` through the real ``nma`` command."""

from __future__ import annotations

import json

from safetensors.torch import load_file

from tests.continual_helpers import STREAM
from tests.helpers import Result, run_nma


def flat(text: str) -> str:
    return " ".join(text.split())


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in flat(result.output), result.output


def test_a_stream_run_with_two_regularizers(tmp_path):
    out = tmp_path / "run"
    extra = [
        "--regularizer",
        "ewc",
        "--regularizer",
        "replay",
        "--set",
        "regularizer.ewc.samples=8",
    ]
    result = run_nma("run", *STREAM, *extra, "--set", "train.checkpoint_every=4", "--out", str(out))
    assert result.code == 0, result.output
    for fragment in ("untrained (b)", "perm 2", "ACC", "BWT", "FWT", "forgetting"):
        assert fragment in result.stdout, result.stdout
    record = json.loads((out / "continual.json").read_text())
    assert record["experiences"] == ["perm 0", "perm 1", "perm 2"]
    assert len(record["accuracy_matrix"]) == 3 and len(record["initial_accuracy"]) == 3
    assert all(0 <= v <= 1 for row in record["accuracy_matrix"] for v in row)
    assert set(record["summary"]) == {"acc", "bwt", "fwt", "forgetting"}
    assert (out / "accuracy-matrix.png").stat().st_size > 1000
    summary = json.loads((out / "summary.json").read_text())
    assert summary["step"] == 18 and summary["continual"] == record["summary"]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "continual"] == [6, 12, 18]
    # every experience's end is checkpointed, with the regularizers' tensors
    state = load_file(str(out / "checkpoints" / "step-00000018.safetensors"))
    assert {"regularizer/ewc/1/importance/head.weight", "regularizer/replay/buffer/inputs"} <= set(
        state
    )
    assert "regularizer/ewc/2/importance/head.weight" in state


def test_nma_continual_compares_methods(tmp_path):
    out = tmp_path / "cmp"
    methods = ["--method", "naive", "--method", "si+replay", "--method", "joint"]
    result = run_nma("continual", *STREAM[6:], *methods, "--out", str(out))
    assert result.code == 0, result.output
    table = flat(result.stdout)
    for fragment in ("naive", "si+replay", "joint", "ACC", "BWT", "FWT", "forgetting"):
        assert fragment in table, result.stdout
    data = json.loads((out / "comparison.json").read_text())
    assert [m["method"] for m in data["methods"]] == ["naive", "si+replay", "joint"]
    assert set(data["methods"][0]) >= {"acc", "bwt", "fwt", "forgetting"}
    assert set(data["methods"][2]) >= {"acc"} and "bwt" not in data["methods"][2]
    assert len(data["matrices"]["joint"]["accuracy_matrix"]) == 1
    # same seed, same model: every method starts from the same untrained accuracies
    initial = {m: d["initial_accuracy"] for m, d in data["matrices"].items()}
    assert initial["naive"] == initial["si+replay"] == initial["joint"]
    assert "| si+replay |" in (out / "comparison.md").read_text()
    assert (out / "si+replay" / "accuracy-matrix.png").exists()


def test_bad_input_is_one_paragraph(tmp_path):
    assert_usage_error(
        run_nma("continual", "--method", "ewk", "--out", str(tmp_path / "a")),
        "Unknown method 'ewk'",
        "Did you mean 'ewc'?",
    )
    assert_usage_error(
        run_nma("continual", "--task", "copy", "--method", "naive", "--out", str(tmp_path / "b")),
        "The task 'copy' is not a stream",
        "permuted-digits",
    )


def test_every_stream_runs_with_other_memories_and_controllers(tmp_path):
    """nma run over each stream with a memory and controller other than ntm + lstm."""
    from typer.testing import CliRunner

    from nma.cli import app

    cases = [
        ("algorithmic-stream", "dnc", "mlp",
         ["memory.slots=8", "task.width=3", "task.max_length=3", "task.eval_size=4"]),
        ("split-digits", "kv", "lstm", ["task.num_experiences=2", "task.scenario='class'"]),
    ]  # fmt: skip
    for task, memory, controller, settings in cases:
        out = tmp_path / task
        args = ["run", "--task", task, "--memory", memory, "--controller", controller]
        args += ["--regularizer", "agem", "--set", "train.experience_steps=2"]
        args += ["--set", "controller.hidden_size=8", "--set", "train.batch_size=2"]
        args += ["--set", "train.eval_every=0", "--device", "cpu", "--no-progress"]
        for item in settings:
            args += ["--set", item]
        result = CliRunner().invoke(app, [*args, "--out", str(out)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        record = json.loads((out / "continual.json").read_text())
        count = 3 if task == "algorithmic-stream" else 2
        assert len(record["accuracy_matrix"]) == count, record
