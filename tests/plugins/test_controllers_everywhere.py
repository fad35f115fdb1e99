"""The ``gru`` and ``transformer`` controllers drive every registered memory."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nma.build import build_memory
from nma.model import MemoryModel
from nma.registry import get_registry
from tests.api_helpers import memory_names, small_options
from tests.helpers import TINY, run_nma


@pytest.mark.parametrize("controller", ["gru", "transformer"])
@pytest.mark.parametrize("memory", memory_names())
def test_controller_trains_with_every_memory(controller: str, memory: str) -> None:
    torch.manual_seed(0)
    mem = build_memory(memory, small_options(memory))
    cls = get_registry().get("controller", controller)
    options = {"heads": 2} if controller == "transformer" else {}
    ctrl = cls(cls.Config(hidden_size=8, **options), 3 + mem.read_size)
    model = MemoryModel(ctrl, mem, output_size=2)
    outputs, state = model(torch.randn(4, 2, 3))
    assert outputs.shape == (4, 2, 2) and torch.isfinite(outputs).all()
    outputs.square().mean().backward()
    assert all(p.grad is not None for p in ctrl.parameters())


def test_cli_runs_the_transformer_controller(tmp_path: Path) -> None:
    """One real ``nma run`` (about 6 s); the gru goes through the same assembly."""
    out = tmp_path / "run"
    result = run_nma(
        "run", "--memory", "dnc", "--controller", "transformer", "--task", "copy", *TINY,
        "--set", "controller.heads=2", "--steps", "3", "--out", str(out),
    )  # fmt: skip
    assert result.code == 0, result.output
    assert 'controller = "transformer"' in (out / "config.toml").read_text()
