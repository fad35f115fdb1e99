"""A run: its directory, its state, and how it starts, resumes and reports.

Run directory layout::

    config.toml        the resolved configuration (``nma run --config`` reads it back)
    run.json           versions, components, device, status
    metrics.jsonl      training and evaluation metrics, one JSON object a line
    checkpoints/       step-NNNNNNNN.safetensors, the latest few
    summary.json       the final evaluation
    continual.json     stream tasks: the accuracy matrix R, b, ACC, BWT, FWT, forgetting
    accuracy-matrix.png  stream tasks: R as a heatmap
    error.log          the traceback of a failed run, if any
    recording.safetensors, analysis.json, figures/*.png
                       written by nma plot and nma run --plot (nma.run_figures)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel

import nma
from nma.build import Components, build_components
from nma.checkpoint import (
    Checkpoint,
    atomic_write_text,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
)
from nma.config import RunConfig, load_toml, resolve
from nma.continual_record import ContinualRecord
from nma.distributed import World, broadcast, launched_world, setup
from nma.errors import NmaError, UsageError
from nma.loop import (
    restore_training_state,
    rng_states,
    set_rng_states,
    training_checkpoint,
    write_checkpoint,
)
from nma.metrics_log import MetricsLog
from nma.optimizer import build_optimizer
from nma.persistence import load_memory
from nma.registry import Registry


class HookError(NmaError):
    """A plugin's run hook raised."""


@dataclass
class RunContext:
    """Everything a run holds; passed to the run hooks (``nma_run_start`` ...).

    Attributes:
        config: the resolved configuration.
        registry: the plugin registry.
        parts: the task, the model and the regularizers.
        optimizer: the model's optimiser (:func:`build_optimizer`).
        device: where the model and the batches live.
        run_dir: the run directory.
        step: optimiser steps completed so far.
        continual: for a stream task, the accuracy matrix measured so far.
    """

    config: RunConfig
    registry: Registry
    parts: Components
    optimizer: torch.optim.Optimizer
    device: torch.device
    run_dir: Path
    console: Console
    world: World = field(default_factory=World)
    train_model: torch.nn.Module | None = None
    step: int = 0
    stop_requested: bool = False
    last_eval_step: int = -1
    continual: ContinualRecord | None = None
    started: float = field(default_factory=time.time)

    @property
    def model(self) -> torch.nn.Module:
        """The assembled memory model."""
        return self.parts.model

    @property
    def checkpoint_dir(self) -> Path:
        """Where checkpoints are written."""
        return self.run_dir / "checkpoints"

    @property
    def metrics(self) -> MetricsLog:
        """The run's ``metrics.jsonl`` (written by rank 0 only)."""
        return MetricsLog(self.run_dir / "metrics.jsonl", enabled=self.world.is_main)

    def request_stop(self) -> None:
        """Stop cleanly after the current step, with a checkpoint (what Ctrl-C does)."""
        self.stop_requested = True

    def call_hook(self, name: str, **kwargs: Any) -> None:
        """Call run hook ``name`` on every plugin, naming the plugin if one raises.

        Under ``torchrun`` only rank 0 calls hooks.
        """
        if not self.world.is_main:
            return
        caller = getattr(self.registry.plugin_manager.hook, name)
        for impl in reversed(caller.get_hookimpls()):
            try:
                impl.function(run=self, **kwargs)
            except Exception as exc:
                raise HookError(
                    f"The plugin {impl.plugin_name!r} failed in its {name} hook at step "
                    f"{self.step} ({type(exc).__name__}: {exc}). Disable it with "
                    f"NMA_DISABLE_PLUGINS or fix it, then resume the run."
                ) from exc

    def save_checkpoint(self) -> Path:
        """Write a checkpoint of the current step and prune old ones (rank 0 only)."""
        if not self.world.is_main:
            return checkpoint_path(self.checkpoint_dir, self.step)
        checkpoint = training_checkpoint(
            self.step,
            self.model,
            self.optimizer,
            self.parts.regularizers,
            rng_states(self.device),
            extra={
                "last_eval_step": self.last_eval_step,
                "nma_version": nma.__version__,
                "continual": self.continual.to_dict() if self.continual else None,
            },
        )
        return write_checkpoint(checkpoint, self.checkpoint_dir, self.config.train.keep_checkpoints)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Load a checkpoint into the model, optimiser, regularizers and generators."""
        restore_training_state(
            checkpoint,
            self.model,
            self.optimizer,
            self.parts.regularizers,
            what="run's model",
            advice="Was the run directory's config.toml edited?",
        )
        if self.config.train.cuda_graph:  # the captured update reads lr from a tensor
            for group in self.optimizer.param_groups:
                group["lr"] = torch.tensor(float(group["lr"]), device=self.device)
        set_rng_states(checkpoint.rng, self.device)
        self.step = checkpoint.step
        self.last_eval_step = int(checkpoint.extra.get("last_eval_step", -1))
        continual = checkpoint.extra.get("continual")
        self.continual = ContinualRecord.from_dict(continual) if continual else None

    def write_status(self, status: str, **extra: Any) -> None:
        """Update ``run.json`` (rank 0 only)."""
        if not self.world.is_main:
            return
        path = self.run_dir / "run.json"
        info: dict[str, Any] = {}
        if path.exists():
            try:
                info = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                info = {}
        components = {}
        for kind, name in [
            ("memory", self.config.components.memory),
            ("addressing", self.config.addressing_name),
            ("controller", self.config.components.controller),
            ("task", self.config.components.task),
            *[("regularizer", n) for n in self.config.regularizers],
        ]:
            if name is None:
                continue
            plugin = self.registry.components[kind][name].plugin  # type: ignore[index]
            components.setdefault(kind, []).append(
                {"name": name, "distribution": plugin.distribution, "version": plugin.version}
            )
        info.update(
            {
                "nma_version": nma.__version__,
                "torch_version": torch.__version__,
                "device": str(self.device),
                "processes": self.world.size,
                "components": components,
                "status": status,
                "step": self.step,
                "updated": datetime.now().isoformat(timespec="seconds"),
                **extra,
            }
        )
        info.setdefault("created", info["updated"])
        atomic_write_text(path, json.dumps(info, indent=2) + "\n")


def resolve_device(name: str, world: World | None = None) -> torch.device:
    """``auto`` → CUDA when available, else CPU; a clear error when CUDA is missing.

    Under ``torchrun``, ``cuda`` means this process's ``cuda:LOCAL_RANK``.
    """
    world = world or World()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and world.distributed and torch.cuda.is_available():
        name = f"cuda:{world.local_rank}"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(
                f"--device {name} was asked for, but this PyTorch build sees no CUDA device "
                f"(torch {torch.__version__}). Use --device cpu or auto."
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UsageError(
                f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) exist."
            )
        return device
    return torch.device(name)


def new_run_dir(config: RunConfig, base: Path = Path("runs")) -> Path:
    """The run directory: ``train.out_dir``, or a fresh one under ``base``."""
    if config.train.out_dir:
        path = Path(config.train.out_dir)
        if (path / "config.toml").exists() or list_checkpoints(path / "checkpoints"):
            raise UsageError(
                f"The run directory {str(path)!r} already holds a run. Continue it with "
                f"--resume {path}, or choose another directory with --out."
            )
        path.mkdir(parents=True, exist_ok=True)
        return path
    c = config.components
    stem = f"{datetime.now():%Y%m%d-%H%M%S}-{c.memory}-{c.controller}-{c.task}"
    path = base / stem
    n = 2
    while path.exists():
        path = base / f"{stem}-{n}"
        n += 1
    path.mkdir(parents=True)
    return path


def create_run(config: RunConfig, registry: Registry, console: Console) -> RunContext:
    """Make a new run: seed, build, write its configuration.

    Under ``torchrun``, rank 0 makes the run directory and tells the others.
    """
    world = launched_world()
    device = resolve_device(config.train.device, world)
    setup(world, device)
    made: tuple[str | None, str | None] = (None, None)
    if world.is_main:
        try:
            made = (str(new_run_dir(config)), None)
        except UsageError as exc:
            made = (None, str(exc))
    path, error = broadcast(made, world)
    if error is not None:
        raise UsageError(error)
    run_dir = Path(path)
    run = _assemble(config, registry, device, run_dir, console, world)
    if world.is_main:
        atomic_write_text(run_dir / "config.toml", config.to_toml())
        run.metrics.path.touch()
    run.write_status("created")
    return run


def resume_run(
    run_dir: Path,
    registry: Registry,
    console: Console,
    overrides: dict[str, Any],
    rewind: bool = True,
) -> RunContext:
    """Reopen ``run_dir`` at its latest checkpoint (or at step 0 if it has none).

    With ``rewind``, ``metrics.jsonl`` loses the records after the checkpoint's step,
    as a resumed run will write them again.
    """
    config_path = run_dir / "config.toml"
    if not config_path.exists():
        raise UsageError(
            f"{str(run_dir)!r} is not a run directory (it has no config.toml); nothing to resume."
        )
    raw = load_toml(config_path)
    for key, value in overrides.items():
        section, _, option = key.partition(".")
        raw.setdefault(section, {})[option] = value
    config = resolve(raw, registry)
    world = launched_world()
    device = resolve_device(config.train.device, world)
    setup(world, device)
    run = _assemble(config, registry, device, run_dir, console, world)
    checkpoints = list_checkpoints(run.checkpoint_dir)
    if checkpoints:
        run.restore(load_checkpoint(checkpoints[-1][1]))
    if rewind:
        run.metrics.rewind(run.step)
    if overrides and world.is_main:
        atomic_write_text(config_path, config.to_toml())
    return run


def _assemble(
    config: RunConfig,
    registry: Registry,
    device: torch.device,
    run_dir: Path,
    console: Console,
    world: World | None = None,
) -> RunContext:
    torch.manual_seed(config.train.seed)
    parts = build_components(config, registry)
    parts.model.to(device)
    parts.model.recompute_chunk = config.train.recompute_chunk
    if config.train.compile:
        parts.model.compile_runs(config.train.compile_steps)
    if config.train.memory_init:
        parts.model.prefill_memory(
            load_memory(config.train.memory_init, parts.model.memory, 1, device)
        )
    world = world or World()
    if config.train.cuda_graph and config.train.optimizer != "adam":
        raise UsageError(
            f"train.cuda_graph replays the optimiser step from a CUDA graph, which needs "
            f"train.optimizer = adam (capturable), not {config.train.optimizer}. Drop "
            f"--cuda-graph or use adam."
        )
    if config.train.cuda_graph and (device.type != "cuda" or world.distributed):
        where = "several processes (torchrun)" if world.distributed else f"device {device}"
        raise UsageError(
            f"train.cuda_graph replays training steps from CUDA graphs on one GPU; it cannot "
            f"be used on {where}. Drop --cuda-graph (or set train.cuda_graph=false)."
        )
    # capturable: a CUDA graph replays the update, reading the learning rate from a tensor
    lr: float | torch.Tensor = config.train.lr
    if config.train.cuda_graph:
        lr = torch.tensor(config.train.lr, device=device)
    optimizer = build_optimizer(config.train, parts.model.parameters(), lr)
    train_model: torch.nn.Module = parts.model
    if world.distributed:
        train_model = DistributedDataParallel(
            parts.model,
            device_ids=[device.index] if device.type == "cuda" else None,
            # only a prefilled memory leaves a parameter (its learned initial state) unused
            find_unused_parameters=parts.model.memory_prefill is not None,
        )
    return RunContext(
        config=config,
        registry=registry,
        parts=parts,
        optimizer=optimizer,
        device=device,
        run_dir=run_dir,
        console=console,
        world=world,
        train_model=train_model,
    )
