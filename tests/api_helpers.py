"""Helpers for the Python API tests: small options for any registered memory."""

from __future__ import annotations

from typing import Any

from nma.registry import get_registry

SMALL = {"slots": 8, "width": 6, "key_size": 6, "hidden": 8, "levels": 2}
"""Small values for the options most memories share (where a memory has them)."""


def memory_names() -> list[str]:
    """Every registered memory, now and later."""
    return get_registry().names("memory")


def small_options(name: str) -> dict[str, Any]:
    """The options of :data:`SMALL` that the memory ``name`` has."""
    fields = get_registry().get("memory", name).Config.model_fields
    return {key: value for key, value in SMALL.items() if key in fields}
