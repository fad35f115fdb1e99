"""The base of every component's options model.

Every component (memory, addressing, controller, task, regularizer) declares its
options as a pydantic model subclassing :class:`Options`: each field has a type,
a default, limits (``Field(ge=..., le=...)``) and a ``description``. The CLI
validates ``--set`` values and TOML sections against it, ``nma info`` prints it,
and the resolved values are saved with every run.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Options(BaseModel):
    """Validated options of one component. Unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
