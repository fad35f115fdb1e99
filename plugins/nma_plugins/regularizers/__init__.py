"""Regularizers: ``l2`` and the continual-learning methods ``ewc``, ``online-ewc``,
``si``, ``mas``, ``gem``, ``agem`` and ``replay``."""

from __future__ import annotations

from nma import Register, hookimpl
from nma_plugins.regularizers.agem import AGEMRegularizer
from nma_plugins.regularizers.ewc import EWCRegularizer
from nma_plugins.regularizers.gem import GEMRegularizer
from nma_plugins.regularizers.l2 import L2Regularizer
from nma_plugins.regularizers.mas import MASRegularizer
from nma_plugins.regularizers.online_ewc import OnlineEWCRegularizer
from nma_plugins.regularizers.replay import ReplayRegularizer
from nma_plugins.regularizers.si import SIRegularizer


@hookimpl
def nma_register_regularizers(register: Register) -> None:
    """Register the first-party regularizers."""
    register("l2", L2Regularizer)
    register("ewc", EWCRegularizer)
    register("online-ewc", OnlineEWCRegularizer)
    register("si", SIRegularizer)
    register("mas", MASRegularizer)
    register("gem", GEMRegularizer)
    register("agem", AGEMRegularizer)
    register("replay", ReplayRegularizer)
