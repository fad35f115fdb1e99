"""The training loop of a run (``nma run``): one place where its steps, evaluations and
checkpoints happen.

The step itself, the regularizers' hooks, the learning-rate schedule, evaluation and
the checkpoint cadence are :mod:`nma.loop`'s, shared with the Python API's trainers
(:mod:`nma.training`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import torch
from torch import Tensor, nn

from nma.checkpoint import atomic_write_text
from nma.config import TrainConfig
from nma.continual_record import FIGURE_FILE, ContinualRecord, plot_accuracy_matrix
from nma.cuda_graph import GraphedStep
from nma.distributed import World, any_rank
from nma.errors import UsageError
from nma.loop import (
    augment_batch,
    autocast,
    checkpoint_due,
    end_experience,
    evaluate_batches,
    lr_factor,
    optimizer_step,
)
from nma.progress import TrainProgress, showing
from nma.run import RunContext
from nma.seeding import EVAL_SEED, generator
from nma.stream import is_stream
from nma.task import Batch, MetricValue, Task, combine_metrics

__all__ = [
    "Schedule",
    "StopRequested",
    "autocast",
    "evaluate",
    "evaluate_experiences",
    "learning_rate",
    "set_learning_rate",
    "train",
    "training_step",
]


class StopRequested(Exception):
    """Training stopped on request (Ctrl-C) after a checkpoint."""


@dataclass(frozen=True)
class Schedule:
    """How a run's steps fall into experiences.

    A plain task is one experience of ``train.steps`` steps. A stream trains its
    experiences in turn, ``per_experience`` steps each (``train.experience_steps``, or
    ``train.steps`` divided evenly); in joint mode it trains on all of them at once
    for as many steps in total, as one experience.
    """

    experiences: int
    per_experience: int
    stream: bool = False
    joint: bool = False

    @property
    def total(self) -> int:
        """Optimiser steps of the whole run."""
        return self.experiences * self.per_experience

    @classmethod
    def of(cls, task: Task, cfg: TrainConfig) -> Schedule:
        """The schedule of ``task`` under ``cfg``."""
        if not is_stream(task):
            return cls(1, cfg.steps)
        count = task.num_experiences  # type: ignore[attr-defined]
        per = cfg.experience_steps or max(1, cfg.steps // count)
        if cfg.stream_mode == "joint":
            return cls(1, per * count, stream=True, joint=True)
        return cls(count, per, stream=True)


def train(run: RunContext, show_progress: bool = True) -> dict[str, float]:
    """Train ``run`` from ``run.step`` to ``train.steps``; return the final evaluation.

    The training stream is recreated from the run's seed and the batches already
    used are skipped, so a resumed run sees exactly the data an uninterrupted one
    would have seen.

    A stream task (:class:`nma.StreamTask`) is trained one experience after another
    (:class:`Schedule`): each experience's data comes from its own generator, the
    learning-rate schedule restarts with it, and when it ends every regularizer's
    ``end_experience`` runs and the model is evaluated on every experience (a row of
    the accuracy matrix, ``run.continual``, saved in checkpoints and in
    ``continual.json``).
    """
    cfg = run.config.train
    task, model = run.parts.task, run.parts.model
    regularizers = list(run.parts.regularizers.values())
    plan = Schedule.of(task, cfg)
    if plan.stream and cfg.cuda_graph:
        raise UsageError(
            f"The task {run.config.components.task!r} is a stream of experiences, whose "
            f"regularizers run work of their own around each step; train.cuda_graph cannot "
            f"capture that. Drop --cuda-graph."
        )
    experience = min(run.step // plan.per_experience, plan.experiences - 1) if plan.total else 0
    stream = _train_batches(run, plan, experience)
    for _ in range(run.step - experience * plan.per_experience):
        next(stream)

    run.write_status("running")
    if plan.stream:
        _start_record(run, plan)
    run.call_hook("nma_run_start")
    progress = TrainProgress(run.console, plan.total, run.step, task.main_metric)
    show_progress = show_progress and run.world.is_main
    step_fn: Callable[[Batch], tuple[Tensor, Tensor]] = partial(training_step, run)
    if cfg.cuda_graph:
        step_fn = GraphedStep(step_fn)
    model.train()
    with showing(progress, show_progress):
        while run.step < plan.total:
            if run.step // plan.per_experience != experience:
                experience = run.step // plan.per_experience
                stream = _train_batches(run, plan, experience)
            batch = augment_batch(next(stream).to(run.device), regularizers)
            within = run.step - experience * plan.per_experience
            set_learning_rate(run.optimizer, learning_rate(cfg, within, plan.per_experience))
            loss, outputs = step_fn(batch)
            run.step += 1
            step = run.step

            record = {"loss": loss.item()}
            if step % cfg.log_every == 0 or step == plan.total:
                with torch.no_grad():
                    size = batch.inputs.shape[1]
                    batch_metrics = task.metrics(outputs.detach(), batch)
                    record.update(task.summarize_metrics(combine_metrics([(batch_metrics, size)])))
                run.metrics.append(step, "train", record)
                progress.advance(step, loss=record["loss"], metric=record.get(task.main_metric))
            else:
                progress.advance(step)
            ended = plan.stream and step % plan.per_experience == 0
            if ended:
                _end_experience(run, plan, experience, progress)
            if cfg.eval_every and step % cfg.eval_every == 0:
                _evaluate_and_log(run, progress)
            run.call_hook("nma_train_step", step=step, metrics=record)
            if run.world.distributed:
                run.stop_requested = any_rank(run.stop_requested, run.world, run.device)
            if checkpoint_due(step, cfg.checkpoint_every, ended, run.stop_requested):
                run.save_checkpoint()
            if run.stop_requested:
                run.write_status("interrupted")
                raise StopRequested

        if run.last_eval_step != run.step:
            _evaluate_and_log(run, progress)
        final = {k: v for k, v in _last_eval(run).items() if k not in ("step", "split")}
    run.save_checkpoint()
    if run.world.is_main:
        summary: dict[str, object] = {"step": run.step, "eval": final}
        if run.continual is not None:
            summary["continual"] = run.continual.summary()
            run.continual.write(run.run_dir)
            plot_accuracy_matrix(run.continual, run.run_dir / FIGURE_FILE, _title(run))
        atomic_write_text(run.run_dir / "summary.json", json.dumps(summary, indent=2))
    run.write_status("finished")
    run.call_hook("nma_run_end", metrics=final)
    return final


def _train_batches(run: RunContext, plan: Schedule, experience: int) -> Iterator[Batch]:
    """The training data of ``experience``, from a generator of its own."""
    cfg = run.config.train
    name = data_stream(run.world)
    task = run.parts.task
    if not plan.stream:
        return task.batches("train", cfg.batch_size, generator(cfg.seed, name))
    if plan.joint:
        gen = generator(cfg.seed, f"{name}/joint")
        return task.batches("train", cfg.batch_size, gen, experience=None)  # type: ignore[call-arg]
    gen = generator(cfg.seed, f"{name}/experience-{experience}")
    return task.batches("train", cfg.batch_size, gen, experience=experience)  # type: ignore[call-arg]


def _start_record(run: RunContext, plan: Schedule) -> None:
    """Open the accuracy record and measure ``b``, the untrained model's accuracies."""
    task = run.parts.task
    if run.continual is None:
        run.continual = ContinualRecord(
            names=task.experience_names(),  # type: ignore[attr-defined]
            metric=task.experience_metric,  # type: ignore[attr-defined]
            joint=plan.joint,
        )
    if run.continual.initial is None and run.step == 0:
        run.continual.initial = evaluate_experiences(run)


def _end_experience(
    run: RunContext, plan: Schedule, experience: int, progress: TrainProgress
) -> None:
    """Close ``experience``: the regularizers' ``end_experience``, then a row of R."""
    cfg = run.config.train
    task = run.parts.task
    if not plan.joint:

        def batches_for(name: str) -> Iterator[Batch]:
            gen = generator(cfg.seed, f"end-experience-{experience}/{name}")
            return task.batches("train", cfg.batch_size, gen, experience=experience)  # type: ignore[call-arg]

        end_experience(run.parts.regularizers, run.model, batches_for)
    assert run.continual is not None
    row = evaluate_experiences(run)
    run.continual.rows.append(row)
    run.metrics.append(run.step, "continual", {"experience": experience, "accuracy": row})
    if run.world.is_main:
        run.continual.write(run.run_dir)
    shown = " ".join(f"{v:.3f}" for v in row)
    label = "all experiences (joint)" if plan.joint else f"experience {experience}"
    progress.print(f"[cyan]after {label}[/cyan]: {run.continual.metric} {shown}")


def evaluate_experiences(run: RunContext) -> list[float]:
    """The stream's ``experience_metric`` on each experience's held-out set."""
    cfg = run.config.train
    task = run.parts.task
    metric = task.experience_metric  # type: ignore[attr-defined]
    return [
        evaluate(run.model, task, cfg.eval_batch_size, run.device, cfg.precision, i)[metric]
        for i in range(task.num_experiences)  # type: ignore[attr-defined]
    ]


def _title(run: RunContext) -> str:
    c = run.config.components
    methods = "+".join(c.regularizer) or "no regularizer"
    mode = ", joint" if run.config.train.stream_mode == "joint" else ""
    return f"{c.task}: {c.memory} + {c.controller}, {methods}{mode}"


def training_step(run: RunContext, batch: Batch) -> tuple[Tensor, Tensor]:
    """One optimiser step on ``batch``: forward, loss (plus the regularizers'
    penalties), backward, clipping, update. Returns the task loss and the outputs.

    Everything here may be captured in a CUDA graph (``train.cuda_graph``): no host
    synchronisation, and the batch read only through its tensors.
    """
    cfg = run.config.train
    model = run.parts.model

    def forward() -> tuple[Tensor, Tensor]:
        with autocast(run.device, cfg.precision, cache=not cfg.cuda_graph):
            # the final state is dropped at once: kept, it would stay alive through backward
            outputs = (run.train_model or model)(batch.inputs)[0]
            loss = run.parts.task.loss(outputs.float(), batch)
        return loss, outputs

    regularizers = list(run.parts.regularizers.values())
    return optimizer_step(forward, model, run.optimizer, regularizers, cfg.grad_clip)


def learning_rate(cfg: TrainConfig, step: int, steps: int | None = None) -> float:
    """The learning rate of optimiser step ``step`` (counted from 0) of ``steps``
    (``train.steps`` by default; a stream restarts the schedule with each experience).

    ``lr`` times :func:`nma.loop.lr_factor`: a function of the step alone, so a resumed
    run follows the same schedule without any scheduler state in its checkpoint.
    ``cosine``: ``lr (r + (1 - r)(1 + cos(pi s / S)) / 2)`` with ``r = lr_final_ratio``
    and ``S = steps - 1``; ``step``: ``lr f^floor(s / k)`` with ``f = lr_step_factor`` and
    ``k = lr_step_every``.
    """
    steps = cfg.steps if steps is None else steps
    factor = lr_factor(
        cfg.lr_schedule, cfg.lr_final_ratio, step, steps, cfg.lr_step_every, cfg.lr_step_factor
    )
    return cfg.lr * factor


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set every parameter group's learning rate; in place when it is a tensor (an
    optimiser captured in a CUDA graph reads it from the same memory at each replay)."""
    for group in optimizer.param_groups:
        if isinstance(group["lr"], Tensor):
            group["lr"].fill_(lr)
        else:
            group["lr"] = lr


def evaluate(
    model: nn.Module,
    task: Task,
    batch_size: int,
    device: torch.device,
    precision: str = "fp32",
    experience: int | None = None,
) -> dict[str, float]:
    """Loss and metrics over the task's held-out split (see :func:`nma.task.combine_metrics`),
    or over one experience's held-out set for a stream task."""
    gen = generator(EVAL_SEED, "eval-data")
    if experience is None:
        held_out = task.batches("eval", batch_size, gen)
    else:
        held_out = task.batches("eval", batch_size, gen, experience=experience)  # type: ignore[call-arg]

    def score(outputs: Tensor, batch: Batch) -> dict[str, MetricValue]:
        metrics: dict[str, MetricValue] = {"loss": task.loss(outputs, batch).item()}
        metrics.update(task.metrics(outputs, batch))
        return metrics

    return task.summarize_metrics(evaluate_batches(model, held_out, score, device, precision))


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
