"""Helpers for recurrent state: nested NamedTuples of tensors.

A state is a tensor, a tuple/NamedTuple of states, or ``None``. These helpers
map over such trees so the trainer can detach or move state without knowing its
shape.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor

State = Any
"""A tensor, ``None``, or a (Named)tuple of states."""


def map_state(fn: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply ``fn`` to every tensor in ``state``, keeping its (Named)tuple structure."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return fn(state)
    if isinstance(state, tuple):
        mapped = [map_state(fn, item) for item in state]
        if hasattr(state, "_fields"):
            return type(state)(*mapped)
        return tuple(mapped)
    raise TypeError(f"recurrent state must hold tensors and tuples, not {type(state).__name__}")


def detach_state(state: State) -> State:
    """Cut the autograd graph behind ``state`` (truncated back-propagation through time)."""
    return map_state(lambda t: t.detach(), state)
