"""What an experiment is: named configurations of ``nma run`` (or of ``nma continual``),
each at its tuned full size and at a ``--quick`` smoke-test size, and the targets its
results are set against."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal


@dataclass(frozen=True)
class Target:
    """A published or claimed figure for one metric.

    Attributes:
        metric: the held-out metric's name (as in ``summary.json``), or for a continual
            experiment ``forgetting_reduction`` (see :mod:`nma.experiments.runner`).
        goal: the figure to reach; ``None`` where nothing is claimed (reported only).
        higher_is_better: whether the metric must be at least (True) or at most the goal.
        source: where the figure comes from (a paper, the issue, a recorded baseline).
    """

    metric: str
    goal: float | None
    higher_is_better: bool
    source: str

    def describe(self) -> str:
        """``≥ 0.95 (source)``, or the source alone when no figure is claimed."""
        if self.goal is None:
            return f"– ({self.source})"
        sign = "≥" if self.higher_is_better else "≤"
        return f"{sign} {self.goal:g} ({self.source})"

    def reached(self, value: float) -> bool | None:
        """Whether ``value`` meets the goal; ``None`` when there is no goal."""
        if self.goal is None:
            return None
        return value >= self.goal if self.higher_is_better else value <= self.goal


@dataclass(frozen=True)
class Configuration:
    """One run of an experiment, as ``--set`` options.

    Attributes:
        name: a short label (a subdirectory of the experiment's output).
        options: dotted keys and values, as ``nma run --set section.key=value``
            (``components.memory``, ``train.steps``, ``task.max_length`` ...): the full,
            tuned configuration.
        quick: the overrides applied on top of ``options`` for ``--quick`` (tiny model,
            few steps: a smoke test that still draws every figure).
        targets: the figures its held-out metrics are set against.
        provenance: where the full configuration comes from: a recorded result in
            ``benchmarks/results/`` or "untested guess".
        methods: for a continual experiment, the methods of ``nma continual``.
    """

    name: str
    options: dict[str, Any]
    quick: dict[str, Any]
    targets: tuple[Target, ...]
    provenance: str
    methods: tuple[str, ...] = ()

    def settings(self, quick: bool) -> dict[str, Any]:
        """The dotted options of the run: the full ones, with ``quick`` applied if asked."""
        return {**self.options, **(self.quick if quick else {})}


@dataclass(frozen=True)
class Experiment:
    """One of the suite's experiments (``nma experiment NAME``).

    Attributes:
        name: the command-line name.
        title: one line saying what it shows.
        configurations: the runs it makes, in order.
        kind: ``run`` (each configuration is an ``nma run``) or ``continual`` (each is an
            ``nma continual`` comparison of its methods).
    """

    name: str
    title: str
    configurations: tuple[Configuration, ...]
    kind: Literal["run", "continual"] = "run"
    notes: tuple[str, ...] = field(default=())
