"""The example under examples/ runs, at a tiny size."""

from __future__ import annotations

import importlib.util
import math
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
