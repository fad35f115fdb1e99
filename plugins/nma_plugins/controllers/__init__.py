"""Controllers: ``lstm``, ``gru``, ``mlp`` and ``transformer``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.controllers.gru import GRUController
from nma_plugins.controllers.lstm import LSTMController
from nma_plugins.controllers.mlp import MLPController
from nma_plugins.controllers.transformer import TransformerController


@hookimpl
def nma_register_controllers(register: Register) -> None:
    """Register the first-party controllers."""
    register("lstm", LSTMController)
    register("gru", GRUController)
    register("mlp", MLPController)
    register("transformer", TransformerController)
