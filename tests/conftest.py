"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import Result, run_nma


@pytest.fixture
def nma_cli() -> Callable[..., Result]:
    """The real ``nma`` command."""
    return run_nma


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    """A folder to hold throwaway distributions (put it on PYTHONPATH or sys.path)."""
    return tmp_path / "site"


def pytest_configure(config: pytest.Config) -> None:
    """One intra-op thread: the suite's own tensors are tiny, and two threads fighting
    a child ``nma`` process for the two cores slow both down many times over."""
    import torch

    torch.set_num_threads(1)
