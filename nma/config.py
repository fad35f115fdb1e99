"""Run configuration: defaults, then a TOML file, then ``--set section.key=value``.

A run's configuration has one section per component kind plus ``components``
(which plugins to use) and ``train`` (the trainer's options)::

    [components]
    memory = "ntm"
    controller = "lstm"
    task = "copy"
    addressing = ""          # empty: the memory's default scheme
    regularizer = ["l2"]

    [memory]                 # options of the chosen memory
    slots = 128

    [regularizer.l2]         # one table per regularizer, by name
    weight = 1e-4

    [train]
    steps = 3000

Each section is validated against the chosen component's options model; any
mistake becomes a :class:`nma.UsageError` of one paragraph.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from nma.errors import UsageError
from nma.options import Options
from nma.registry import Registry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import tomli_w

SECTIONS = ("components", "memory", "addressing", "controller", "task", "regularizer", "train")


class ComponentsConfig(Options):
    """Which registered component fills each role of a run."""

    memory: str = Field("ntm", description="Memory plugin name (nma list-plugins).")
    addressing: str = Field(
        "", description="Addressing plugin name; empty uses the memory's default scheme."
    )
    controller: str = Field("lstm", description="Controller plugin name.")
    task: str = Field("copy", description="Task plugin name.")
    regularizer: list[str] = Field(
        default_factory=list, description="Regularizer plugin names, applied together."
    )


class TrainConfig(Options):
    """Options of the trainer (section ``train``)."""

    steps: int = Field(3000, ge=0, description="Optimiser steps to train for.")
    batch_size: int = Field(16, ge=1, description="Sequences per training batch.")
    optimizer: Literal["adam", "sgd"] = Field(
        "adam",
        description="adam (AdamW with train.weight_decay), or sgd: plain stochastic gradient "
        "descent with train.momentum (as End-To-End Memory Networks were trained).",
    )
    lr: float = Field(1e-3, gt=0, description="Learning rate (the peak of the schedule).")
    momentum: float = Field(
        0.0, ge=0, lt=1, description="With optimizer = sgd: heavy-ball momentum; 0: none."
    )
    lr_schedule: Literal["constant", "cosine", "step"] = Field(
        "cosine",
        description="constant; cosine: the learning rate falls from lr to lr_final_ratio * "
        "lr along a half cosine over train.steps; step: it is multiplied by lr_step_factor "
        "every lr_step_every steps.",
    )
    lr_final_ratio: float = Field(
        0.1, ge=0, le=1, description="With the cosine schedule: the last step's share of lr."
    )
    lr_step_every: int = Field(
        1000, ge=1, description="With the step schedule: optimiser steps between two decays."
    )
    lr_step_factor: float = Field(
        0.5, gt=0, le=1, description="With the step schedule: the factor of each decay."
    )
    weight_decay: float = Field(
        0.0,
        ge=0,
        description="Decoupled weight decay (AdamW, Loshchilov & Hutter 2019): each step "
        "multiplies every parameter by 1 - lr * weight_decay; 0: plain Adam. With sgd: "
        "weight_decay * p added to each gradient (the same step without momentum).",
    )
    grad_clip: float = Field(
        10.0, ge=0, description="Clip the global gradient norm to this value; 0 disables."
    )
    seed: int = Field(0, ge=0, description="Seed of parameters and training data.")
    device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="auto (cuda if available), cpu, cuda or cuda:N.",
    )
    out_dir: str = Field(
        "", description="Run directory; empty makes a new one under ./runs/ for each run."
    )
    checkpoint_every: int = Field(
        500, ge=0, description="Write a checkpoint every N steps (and always at the end); 0: end."
    )
    eval_every: int = Field(
        250, ge=0, description="Evaluate on the held-out split every N steps; 0: at the end."
    )
    log_every: int = Field(25, ge=1, description="Append training metrics every N steps.")
    eval_batch_size: int = Field(64, ge=1, description="Batch size of evaluation.")
    keep_checkpoints: int = Field(2, ge=1, description="How many recent checkpoints to keep.")
    compile: bool = Field(
        False,
        description="Compile the model with torch.compile, train.compile_steps time steps "
        "per graph.",
    )
    compile_steps: int = Field(
        8,
        ge=1,
        description="With train.compile: time steps per compiled graph (a longer run fuses "
        "more and compiles longer).",
    )
    cuda_graph: bool = Field(
        False,
        description="On CUDA, replay each whole training step from a CUDA graph (one per "
        "batch shape).",
    )
    precision: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="fp32, or bf16 mixed precision (autocast; parameters and optimiser "
        "state stay float32).",
    )
    recompute_chunk: int = Field(
        0,
        ge=0,
        description="Activation checkpointing: keep the state every N steps and recompute "
        "the steps between them in the backward pass; 0 stores every step.",
    )
    experience_steps: int = Field(
        0,
        ge=0,
        description="Streams (tasks in experiences): optimiser steps per experience; 0 "
        "divides train.steps evenly among the experiences.",
    )
    stream_mode: Literal["sequential", "joint"] = Field(
        "sequential",
        description="Streams: sequential (one experience after another), or joint (all "
        "experiences at once for as many steps: the upper reference of continual learning).",
    )
    memory_init: str = Field(
        "",
        description="A memory file (nma export-memory) every sequence starts from; "
        "empty: the memory's own initial state.",
    )


class _RawRun(BaseModel):
    components: ComponentsConfig = ComponentsConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("components", "train", mode="before")
    @classmethod
    def _none_is_default(cls, value: Any) -> Any:
        return {} if value is None else value


@dataclass(frozen=True)
class RunConfig:
    """A fully resolved and validated run configuration."""

    components: ComponentsConfig
    memory: Options
    addressing: Options | None
    addressing_name: str | None
    controller: Options
    task: Options
    regularizers: dict[str, Options]
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        """The configuration as plain data, every default filled in (TOML-ready)."""
        components = self.components.model_dump()
        components["addressing"] = self.addressing_name or ""
        out: dict[str, Any] = {
            "components": components,
            "memory": _dump(self.memory),
            "addressing": _dump(self.addressing) if self.addressing is not None else {},
            "controller": _dump(self.controller),
            "task": _dump(self.task),
            "regularizer": {name: _dump(opts) for name, opts in self.regularizers.items()},
            "train": _dump(self.train),
        }
        return out

    def to_toml(self) -> str:
        """The configuration as a TOML document that ``--config`` reads back."""
        return tomli_w.dumps(self.to_dict())


def _dump(options: BaseModel) -> dict[str, Any]:
    return {k: v for k, v in options.model_dump(mode="json").items() if v is not None}


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a configuration file, as a :class:`UsageError` if it is missing or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(
            f"Cannot read the configuration file {str(path)!r}: {exc.strerror}."
        ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(
            f"The configuration file {str(path)!r} is not valid TOML: {exc}."
        ) from None


def parse_assignment(text: str) -> tuple[list[str], Any]:
    """Split ``section.key=value`` into a key path and a TOML-parsed value.

    The value is read as a TOML value (``3``, ``0.5``, ``true``, ``[1, 2]``,
    ``"text"``); anything that is not valid TOML is taken as a plain string.
    """
    key, sep, value = text.partition("=")
    path = [part.strip() for part in key.split(".")]
    if not sep or len(path) < 2 or not all(path):
        raise UsageError(
            f"--set expects section.key=value (for example --set train.lr=0.001), "
            f"not {text!r}. Sections: {', '.join(SECTIONS)}."
        )
    value = value.strip()
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return path, parsed


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base`` (tables merge, values replace)."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def set_path(data: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    """A copy of ``data`` with ``value`` at the key ``path``."""
    update: dict[str, Any] = {path[-1]: value}
    for key in reversed(path[:-1]):
        update = {key: update}
    return merge(data, update)


def check_sections(raw: dict[str, Any]) -> None:
    """Reject unknown top-level sections with a close match."""
    for key, value in raw.items():
        if key not in SECTIONS:
            raise UsageError(
                f"Unknown configuration section {key!r}.{_did_you_mean(key, SECTIONS)} "
                f"Sections: {', '.join(SECTIONS)}."
            )
        if not isinstance(value, dict):
            raise UsageError(
                f"Configuration section {key!r} must be a table of options, not {value!r}."
            )


def resolve(raw: dict[str, Any], registry: Registry) -> RunConfig:
    """Validate raw configuration data against the registry's components."""
    check_sections(raw)
    try:
        base = _RawRun.model_validate(
            {"components": raw.get("components"), "train": raw.get("train")}
        )
    except ValidationError as exc:
        raise UsageError(describe_errors(exc, _RawRun, "")) from None
    comps = base.components

    memory_cls = registry.get("memory", comps.memory)
    controller_cls = registry.get("controller", comps.controller)
    task_cls = registry.get("task", comps.task)

    memory_opts = validate_options(memory_cls.Config, raw.get("memory", {}), "memory", comps.memory)
    if base.train.recompute_chunk > 0 and not getattr(memory_cls, "rerunnable", True):
        raise UsageError(
            f"The memory {comps.memory!r} updates its state in place, so its steps cannot be "
            f"run again and activation checkpointing (train.recompute_chunk = "
            f"{base.train.recompute_chunk}) cannot be used with it. Set train.recompute_chunk=0."
        )
    addressing_name = comps.addressing or memory_cls.default_addressing
    addressing_opts: Options | None = None
    if memory_cls.default_addressing is None:
        if comps.addressing or raw.get("addressing"):
            raise UsageError(
                f"The memory {comps.memory!r} takes no addressing scheme, so --addressing and "
                f"the [addressing] section cannot be used with it."
            )
        addressing_name = None
    else:
        addressing_cls = registry.get("addressing", addressing_name)
        addressing_opts = validate_options(
            addressing_cls.Config, raw.get("addressing", {}), "addressing", addressing_name
        )
    controller_opts = validate_options(
        controller_cls.Config, raw.get("controller", {}), "controller", comps.controller
    )
    task_opts = validate_options(task_cls.Config, raw.get("task", {}), "task", comps.task)

    reg_raw = raw.get("regularizer", {})
    for name in reg_raw:
        if name not in comps.regularizer:
            raise UsageError(
                f"Options are given for the regularizer {name!r}, which this run does not use "
                f"(it uses: {', '.join(comps.regularizer) or 'none'}). Add --regularizer {name} "
                f"or remove the [regularizer.{name}] options."
            )
    if len(set(comps.regularizer)) != len(comps.regularizer):
        raise UsageError(f"A regularizer is named twice: {comps.regularizer}.")
    regularizers: dict[str, Options] = {}
    for name in comps.regularizer:
        cls = registry.get("regularizer", name)
        options = reg_raw.get(name, {})
        if not isinstance(options, dict):
            raise UsageError(
                f"Options of regularizer {name!r} must be a table (regularizer.{name}.KEY=VALUE)."
            )
        regularizers[name] = validate_options(cls.Config, options, "regularizer", name)

    return RunConfig(
        components=comps,
        memory=memory_opts,
        addressing=addressing_opts,
        addressing_name=addressing_name,
        controller=controller_opts,
        task=task_opts,
        regularizers=regularizers,
        train=base.train,
    )


def validate_options(model: type[Options], values: dict[str, Any], kind: str, name: str) -> Options:
    """Validate one component's options; a one-paragraph :class:`UsageError` if invalid."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise UsageError(describe_errors(exc, model, f"{kind} {name!r}")) from None


def describe_errors(exc: ValidationError, model: type[BaseModel], owner: str) -> str:
    """One paragraph describing every problem in a pydantic validation error."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        where = ".".join(loc)
        if error["type"] == "extra_forbidden":
            fields = _fields_at(model, loc[:-1])
            hint = _did_you_mean(loc[-1], fields)
            problems.append(
                f"unknown option {where!r}{' of ' + owner if owner else ''}.{hint} "
                f"Valid options: {', '.join(fields) or 'none'}"
            )
        elif not where:
            problems.append(f"the options{' of ' + owner if owner else ''}: {error['msg']}")
        else:
            problems.append(
                f"option {where!r}{' of ' + owner if owner else ''}: {error['msg']} "
                f"(got {error.get('input')!r})"
            )
    return "Invalid configuration: " + "; ".join(problems) + "."


def _fields_at(model: type[BaseModel], path: list[str]) -> list[str]:
    current: Any = model
    for part in path:
        field = getattr(current, "model_fields", {}).get(part)
        if field is None or not isinstance(field.annotation, type):
            return []
        current = field.annotation
    return sorted(getattr(current, "model_fields", {}))


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def build_raw(
    config_file: str | Path | None,
    shortcuts: dict[str, Any],
    assignments: list[str],
) -> dict[str, Any]:
    """Raw configuration data from a TOML file, CLI shortcuts and ``--set`` assignments.

    ``shortcuts`` maps dotted keys (``"train.steps"``) to values; ``None`` values
    are ignored. Later sources win.
    """
    raw: dict[str, Any] = load_toml(config_file) if config_file else {}
    check_sections(raw)
    for key, value in shortcuts.items():
        if value is not None:
            raw = set_path(raw, key.split("."), value)
    for text in assignments:
        path, value = parse_assignment(text)
        if path[0] not in SECTIONS:
            raise UsageError(
                f"Unknown configuration section {path[0]!r} in --set {text!r}."
                f"{_did_you_mean(path[0], SECTIONS)} Sections: {', '.join(SECTIONS)}."
            )
        raw = set_path(raw, path, value)
    return raw
