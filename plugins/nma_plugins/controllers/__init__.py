"""Controllers: ``lstm`` and ``mlp``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.controllers.lstm import LSTMController
from nma_plugins.controllers.mlp import MLPController


@hookimpl
def nma_register_controllers(register: Register) -> None:
    """Register the first-party controllers."""
    register("lstm", LSTMController)
    register("mlp", MLPController)
