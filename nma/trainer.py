"""The training loop: one place where a run's steps, evaluations and checkpoints happen."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn

from nma.checkpoint import atomic_write_text
from nma.config import TrainConfig
from nma.cuda_graph import GraphedStep
from nma.distributed import World, any_rank
from nma.progress import TrainProgress
from nma.run import RunContext
from nma.seeding import EVAL_SEED, generator
from nma.task import Batch, MetricValue, Task, combine_metrics


class StopRequested(Exception):
    """Training stopped on request (Ctrl-C) after a checkpoint."""


def train(run: RunContext, show_progress: bool = True) -> dict[str, float]:
    """Train ``run`` from ``run.step`` to ``train.steps``; return the final evaluation.

    The training stream is recreated from the run's seed and the batches already
    used are skipped, so a resumed run sees exactly the data an uninterrupted one
    would have seen.
    """
    cfg = run.config.train
    task, model = run.parts.task, run.parts.model
    regularizers = list(run.parts.regularizers.values())
    stream = task.batches("train", cfg.batch_size, generator(cfg.seed, data_stream(run.world)))
    for _ in range(run.step):
        next(stream)

    run.write_status("running")
    run.call_hook("nma_run_start")
    progress = TrainProgress(run.console, cfg.steps, run.step, task.main_metric)
    show_progress = show_progress and run.world.is_main
    step_fn: Callable[[Batch], tuple[Tensor, Tensor]] = partial(training_step, run)
    if cfg.cuda_graph:
        step_fn = GraphedStep(step_fn)
    model.train()
    with progress if show_progress else _nullcontext(progress):
        while run.step < cfg.steps:
            batch = next(stream).to(run.device)
            for regularizer in regularizers:
                batch = regularizer.augment(batch)
            set_learning_rate(run.optimizer, learning_rate(cfg, run.step))
            loss, outputs = step_fn(batch)
            run.step += 1
            step = run.step

            record = {"loss": loss.item()}
            if step % cfg.log_every == 0 or step == cfg.steps:
                with torch.no_grad():
                    size = batch.inputs.shape[1]
                    batch_metrics = task.metrics(outputs.detach(), batch)
                    record.update(task.summarize_metrics(combine_metrics([(batch_metrics, size)])))
                run.metrics.append(step, "train", record)
                progress.advance(step, loss=record["loss"], metric=record.get(task.main_metric))
            else:
                progress.advance(step)
            if cfg.eval_every and step % cfg.eval_every == 0:
                _evaluate_and_log(run, progress)
            run.call_hook("nma_train_step", step=step, metrics=record)
            if run.world.distributed:
                run.stop_requested = any_rank(run.stop_requested, run.world, run.device)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or run.stop_requested:
                run.save_checkpoint()
            if run.stop_requested:
                run.write_status("interrupted")
                raise StopRequested

        if run.last_eval_step != run.step:
            _evaluate_and_log(run, progress)
        final = {k: v for k, v in _last_eval(run).items() if k not in ("step", "split")}
    run.save_checkpoint()
    if run.world.is_main:
        atomic_write_text(
            run.run_dir / "summary.json", json.dumps({"step": run.step, "eval": final}, indent=2)
        )
    run.write_status("finished")
    run.call_hook("nma_run_end", metrics=final)
    return final


def training_step(run: RunContext, batch: Batch) -> tuple[Tensor, Tensor]:
    """One optimiser step on ``batch``: forward, loss (plus the regularizers'
    penalties), backward, clipping, update. Returns the task loss and the outputs.

    Everything here may be captured in a CUDA graph (``train.cuda_graph``): no host
    synchronisation, and the batch read only through its tensors.
    """
    cfg = run.config.train
    model, optimizer = run.parts.model, run.optimizer
    regularizers = list(run.parts.regularizers.values())
    with autocast(run.device, cfg.precision, cache=not cfg.cuda_graph):
        # the final state is dropped at once: kept, it would stay alive through backward
        outputs = (run.train_model or model)(batch.inputs)[0]
        loss = run.parts.task.loss(outputs.float(), batch)
    total = loss
    for regularizer in regularizers:
        penalty = regularizer.penalty(model)
        if penalty is not None:
            total = total + penalty
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if cfg.grad_clip > 0:
        nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
    for regularizer in regularizers:
        regularizer.after_backward(model)
    optimizer.step()
    return loss, outputs


def learning_rate(cfg: TrainConfig, step: int) -> float:
    """The learning rate of optimiser step ``step`` (counted from 0).

    A function of the step alone, so a resumed run follows the same schedule without
    any scheduler state in its checkpoint. ``cosine``: ``lr (r + (1 - r)(1 + cos(pi
    s / S)) / 2)`` with ``r = lr_final_ratio`` and ``S = steps - 1``.
    """
    if cfg.lr_schedule == "constant" or cfg.steps <= 1:
        return cfg.lr
    progress = min(step / (cfg.steps - 1), 1.0)
    ratio = cfg.lr_final_ratio
    return cfg.lr * (ratio + (1 - ratio) * (1 + math.cos(math.pi * progress)) / 2)


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate; in place when it is a tensor (an
    optimiser captured in a CUDA graph reads it from the same memory at each replay)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def autocast(device: torch.device, precision: str, cache: bool = True) -> torch.autocast:
    """Mixed precision for ``precision == "bf16"``, a no-op context otherwise.

    ``cache`` keeps each weight's bfloat16 copy for the whole forward pass (a recurrent
    model uses its weights at every step); CUDA graph capture needs it off.
    """
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=cache
    )


def evaluate(
    model: nn.Module,
    task: Task,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
) -> dict[str, float]:
    """Loss and metrics over the task's held-out split (see :func:`nma.task.combine_metrics`)."""
    model.eval()
    parts: list[tuple[dict[str, MetricValue], int]] = []
    with torch.no_grad():
        for batch in task.batches("eval", batch_size, generator(EVAL_SEED, "eval-data")):
            batch = batch.to(device)
            with autocast(device, precision):
                outputs, _ = model(batch.inputs)
            outputs = outputs.float()
            metrics: dict[str, MetricValue] = {"loss": task.loss(outputs, batch).item()}
            metrics.update(task.metrics(outputs, batch))
            parts.append((metrics, batch.inputs.shape[1]))
    model.train()
    return task.summarize_metrics(combine_metrics(parts))


def _evaluate_and_log(run: RunContext, progress: TrainProgress) -> None:
    run.last_eval_step = run.step
    if not run.world.is_main:
        return
    cfg = run.config.train
    metrics = evaluate(run.model, run.parts.task, cfg.eval_batch_size, run.device, cfg.precision)
    run.metrics.append(run.step, "eval", metrics)
    run.last_eval_step = run.step
    shown = "  ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    progress.print(f"[green]eval[/green] step {run.step}: {shown}")
    run.call_hook("nma_evaluation", step=run.step, metrics=metrics)


def data_stream(world: World) -> str:
    """The name the training data generator is seeded with: one stream per rank."""
    return "train-data" if not world.distributed else f"train-data/rank-{world.rank}"


def _last_eval(run: RunContext) -> dict[str, float]:
    evals = [r for r in run.metrics.read() if r.get("split") == "eval"]
    return evals[-1] if evals else {}


class _nullcontext:
    def __init__(self, value: TrainProgress) -> None:
        self.value = value

    def __enter__(self) -> TrainProgress:
        return self.value

    def __exit__(self, *args: object) -> None:
        return None
