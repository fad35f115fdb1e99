"""``results.md``: an experiment's rows (metric, value, target, whether it is reached)
and its figures, written into its output directory."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from nma.checkpoint import atomic_write_text
from nma.errors import UsageError
from nma.experiments.spec import Target

RESULTS_FILE = "results.md"

OUTCOME_FILE = "outcome.json"
"""Written into a configuration's directory when it has finished: what
``nma experiment --resume`` keeps instead of training it again."""


@dataclass
class Row:
    """One measured figure of one configuration, and its target if it has one."""

    experiment: str
    configuration: str
    metric: str
    value: float
    target: Target | None = None

    def cells(self, quick: bool = False) -> list[str]:
        """The table cells: experiment, configuration, metric, value, target, reached
        (not judged for a ``--quick`` run, whose sizes are not meant to reach it)."""
        target = self.target.describe() if self.target else "–"
        reached = self.target.reached(self.value) if self.target else None
        mark = {True: "yes", False: "no", None: "–"}[reached]
        if quick and reached is not None:
            mark = "not judged (quick)"
        return [self.experiment, self.configuration, self.metric, f"{self.value:.4g}", target, mark]


@dataclass
class Outcome:
    """What one configuration produced: its rows, its figures, its time and directory."""

    experiment: str
    configuration: str
    provenance: str
    rows: list[Row]
    figures: list[Path]
    seconds: float
    directory: Path
    settings: dict[str, object] = field(default_factory=dict)

    def save(self, quick: bool) -> Path:
        """Write ``outcome.json`` into :attr:`directory` (paths relative to it)."""
        data = {
            "quick": quick,
            "experiment": self.experiment,
            "configuration": self.configuration,
            "provenance": self.provenance,
            "rows": [
                {
                    "metric": r.metric,
                    "value": r.value,
                    "target": asdict(r.target) if r.target else None,
                }
                for r in self.rows
            ],
            "figures": [_relative(p, self.directory) for p in self.figures],
            "seconds": self.seconds,
            "settings": self.settings,
        }
        path = self.directory / OUTCOME_FILE
        atomic_write_text(path, json.dumps(data, indent=2, default=str))
        return path

    @classmethod
    def load(cls, directory: Path, quick: bool) -> Outcome | None:
        """The finished outcome kept in ``directory``, or ``None`` if it has none; a
        :class:`nma.UsageError` if it is unreadable or of the other size (quick/full)."""
        path = directory / OUTCOME_FILE
        if not path.is_file():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
            experiment, configuration = data["experiment"], data["configuration"]
            rows = [
                Row(
                    experiment,
                    configuration,
                    r["metric"],
                    float(r["value"]),
                    Target(**r["target"]) if r["target"] else None,
                )
                for r in data["rows"]
            ]
            outcome = cls(
                experiment,
                configuration,
                data["provenance"],
                rows,
                [directory / f for f in data["figures"]],
                float(data["seconds"]),
                directory,
                dict(data["settings"]),
            )
            kept_quick = bool(data["quick"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(
                f"The finished configuration's record {str(path)!r} is unreadable ({exc}); "
                f"move its directory away to train it again."
            ) from None
        if kept_quick != quick:
            size = {True: "--quick", False: "full"}
            raise UsageError(
                f"{str(directory)!r} holds a {size[kept_quick]} run, and this is a "
                f"{size[quick]} one: resume with the same size, or choose another --out."
            )
        return outcome


def render(
    outcomes: list[Outcome],
    base: Path,
    title: str,
    quick: bool,
    failures: dict[str, str] | None = None,
) -> str:
    """The markdown of ``results.md`` in ``base`` (figure links relative to it);
    ``failures`` maps each experiment that failed to its error message."""
    total = sum(o.seconds for o in outcomes)
    size = (
        "quick (smoke-test sizes: the figures are not expected to reach the targets)"
        if quick
        else "full (the tuned configurations)"
    )
    lines = [
        f"# {title}",
        "",
        f"Size: {size}. Training and evaluation time: {total:.0f} s.",
        "",
        "| experiment | configuration | metric | value | target | reached |",
        "| --- | --- | --- | ---: | --- | --- |",
    ]
    for outcome in outcomes:
        lines += ["| " + " | ".join(row.cells(quick)) + " |" for row in outcome.rows]
    if failures:
        lines += ["", "## Failed", ""]
        lines += [f"- **{name}**: {message}" for name, message in failures.items()]
    lines += ["", "## Configurations and figures", ""]
    for o in outcomes:
        lines += [
            f"### {o.experiment} / {o.configuration}",
            "",
            f"Run directory: `{_relative(o.directory, base)}`; {o.seconds:.0f} s. "
            f"Full configuration from: {o.provenance}.",
            "",
            "Settings: " + ", ".join(f"`{k}={v}`" for k, v in o.settings.items()),
            "",
        ]
        lines += [f"![{p.stem}]({_relative(p, base)})" for p in o.figures]
        lines.append("")
    return "\n".join(lines)


def write_results(
    outcomes: list[Outcome],
    base: Path,
    title: str,
    quick: bool,
    failures: dict[str, str] | None = None,
) -> Path:
    """Write ``results.md`` into ``base`` (made if missing); returns its path."""
    base.mkdir(parents=True, exist_ok=True)
    path = base / RESULTS_FILE
    atomic_write_text(path, render(outcomes, base, title, quick, failures))
    return path


def _relative(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()
