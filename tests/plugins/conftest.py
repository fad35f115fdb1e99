"""Fixtures shared by the plugin tests."""

from __future__ import annotations

import pytest

from nma_plugins.controllers import lstm_cell, lstm_sequence
from nma_plugins.memories import dnc_step, ntm_step


@pytest.fixture(params=["python", "native"])
def fused_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test of the fused NTM and DNC steps, of the LSTM cell or of the LSTM and a
    memory as one node per sequence once with the Python paths (step by step) and once
    with the native kernels (the default on the CPU)."""
    if request.param == "python":
        for module in (ntm_step, dnc_step, lstm_cell, lstm_sequence):
            monkeypatch.setattr(module, "use_native", lambda *tensors: False)
    return request.param
