"""The examples under examples/ run, at a tiny size."""

from __future__ import annotations

import importlib.util
import math
import types
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_digits_example_trains_at_a_tiny_size(capsys) -> None:  # noqa: ANN001
    spec = importlib.util.spec_from_file_location("digits", EXAMPLES / "digits_sequences.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.main(["--epochs", "2", "--limit", "200", "--hidden-size", "16",
                          "--memory-size", "8", "--memory-dim", "4", "--lr", "1e-2"])  # fmt: skip
    assert math.isfinite(result["loss"]) and 0.0 <= result["accuracy"] <= 1.0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch   1")
    first, last = (float(line.split("train loss ")[1].split()[0]) for line in lines)
    assert last < first  # it learns


def load(name: str) -> types.ModuleType:
    """The example ``examples/NAME.py`` as a module."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TINY = ["--limit", "300", "--hidden-size", "8", "--memory-size", "4", "--memory-dim", "4",
        "--quiet"]  # fmt: skip


def test_memory_trainer_example_trains_at_a_tiny_size(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    args = [*TINY, "--epochs", "2", "--lr", "1e-2", "--checkpoints", str(tmp_path)]
    result = load("digits_trainer").main(args)
    history = result["history"]
    assert history.epochs == 2 and len(history.val) == 2
    assert history.train[1] < history.train[0]  # it learns
    assert 0.0 <= result["accuracy"] <= 1.0
    assert capsys.readouterr().out.startswith("test accuracy")
    again = load("digits_trainer").main([*args, "--epochs", "3", "--resume"])
    assert again["history"].train[:2] == history.train  # resumed after the two epochs


def test_continual_trainer_example_runs_at_a_tiny_size(capsys) -> None:  # noqa: ANN001
    result = load("continual_digits").main([*TINY, "--tasks", "2", "--epochs", "1",
                                            "--regularizer", "si"])  # fmt: skip
    r = result["accuracy_matrix"]
    assert len(r) == 2 and all(len(row) == 2 for row in r)
    assert set(result["metrics"]) == {"acc", "bwt", "fwt", "forgetting"}
    assert result["metrics"]["acc"] == sum(r[1]) / 2
    out = capsys.readouterr().out
    assert "untrained (b)" in out and "forgetting" in out


def test_memory_experiments_example_quick(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "memory"
    result = load("memory_experiments").main(["--quick", "--out", str(out), "--device", "cpu"])
    assert result["results"] == out / "results.md"
    experiments = {row.split(" | ")[0].strip("| ") for row in result["rows"]}
    assert experiments == {"copy", "associative", "priority-sort", "continual"}
    for name in experiments:
        assert (out / name / "results.md").is_file()
    assert (
        out / "continual" / "permuted-digits-ntm-lstm" / "replay" / "accuracy-matrix.png"
    ).is_file()
    assert "forgetting_reduction" in capsys.readouterr().out


def test_reasoning_examples_quick(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "reasoning"
    result = load("reasoning_examples").main(["--quick", "--out", str(out), "--device", "cpu"])
    metrics = {tuple(c.strip() for c in row.strip("|").split("|")[:3]) for row in result["rows"]}
    assert {("logical", "dnc-lstm", "accuracy"), ("temporal", "dnc-lstm", "accuracy"),
            ("knowledge", "kg-nations-dnc-lstm", "mrr"),
            ("babi", "memn2n-joint", "error")} <= metrics  # fmt: skip
    assert (out / "knowledge" / "kv-lstm" / "figures" / "attention-patterns.png").is_file()
    assert "Wrote" in capsys.readouterr().out
