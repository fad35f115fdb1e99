"""Regularizers given to the trainers: registered names, options, or built instances."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from nma.build import build_regularizer
from nma.errors import UsageError
from nma.regularizer import Regularizer

RegularizerSpec = (
    str
    | Regularizer
    | Sequence[str | Regularizer]
    | Mapping[str, Mapping[str, Any] | Regularizer]
    | None
)
"""A registered name (``"ewc"``), a built :class:`nma.Regularizer`, a sequence of
those, or a mapping from name to options (``{"ewc": {"weight": 1000}}``) or to a built
one."""


def resolve_regularizers(spec: RegularizerSpec) -> dict[str, Regularizer]:
    """The regularizers of ``spec`` by name, registered ones built through the registry
    (the same plugins as ``nma run --regularizer``); an instance is named by its
    class. :class:`UsageError` for unknown names, bad options or other values."""
    if spec is None:
        return {}
    if isinstance(spec, str | Regularizer):
        spec = [spec]
    items: list[tuple[str, Any]]
    if isinstance(spec, Mapping):
        items = list(spec.items())
    elif isinstance(spec, Sequence):
        items = [(_name(item), item) for item in spec]
    else:
        raise UsageError(_BAD.format(spec=spec))
    built: dict[str, Regularizer] = {}
    for name, value in items:
        if name in built:
            raise UsageError(f"The regularizer {name!r} is given twice.")
        if isinstance(value, Regularizer):
            built[name] = value
        elif isinstance(value, str) or value is None:
            built[name] = build_regularizer(name)
        elif isinstance(value, Mapping):
            built[name] = build_regularizer(name, dict(value))
        else:
            raise UsageError(_BAD.format(spec=value))
    return built


_BAD = (
    "regularizers must be registered names ('ewc'), nma.Regularizer instances, a list of "
    "those, or a dict from name to options ({{'ewc': {{'weight': 1000}}}}); got {spec!r}."
)


def _name(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Regularizer):
        return type(item).__name__
    raise UsageError(_BAD.format(spec=item))
