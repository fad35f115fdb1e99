"""A run's metrics as JSON lines: one object per line with ``step`` and ``split``."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from nma.checkpoint import atomic_write_text


class MetricsLog:
    """Appends metric records to ``metrics.jsonl`` and rewinds it on resume."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = path
        self.enabled = enabled

    def append(self, step: int, split: str, values: dict[str, Any]) -> None:
        """Append one record and flush it to disk (nothing when disabled)."""
        if not self.enabled:
            return
        record = {"step": step, "split": split, **{k: _finite(v) for k, v in values.items()}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def read(self) -> list[dict[str, Any]]:
        """Every complete record (a torn last line, from a crash, is skipped)."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def rewind(self, step: int) -> None:
        """Drop records after ``step``: the part of a run that a resume repeats."""
        if not self.enabled:
            return
        kept = [r for r in self.read() if int(r.get("step", 0)) <= step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
