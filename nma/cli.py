"""The ``nma`` command line (Typer).

Every bad input (unknown plugin, unknown or invalid option, corrupt checkpoint)
is reported as one paragraph with exit code 2; a run that fails keeps its last
checkpoint and says how to resume it.
"""

from __future__ import annotations

import inspect
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import nma
from nma.config import build_raw, resolve
from nma.errors import NmaError, UsageError
from nma.registry import KINDS, Registry, get_registry

app = typer.Typer(
    name="nma",
    help="Neural Memory Architectures: assemble and train memory-augmented networks from plugins.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

MemoryOpt = Annotated[str | None, typer.Option("--memory", help="Memory plugin.")]
ControllerOpt = Annotated[str | None, typer.Option("--controller", help="Controller plugin.")]
TaskOpt = Annotated[str | None, typer.Option("--task", help="Task plugin.")]
AddressingOpt = Annotated[
    str | None, typer.Option("--addressing", help="Addressing plugin (memory's default if unset).")
]
RegularizerOpt = Annotated[
    list[str] | None, typer.Option("--regularizer", help="Regularizer plugin (repeatable).")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="TOML configuration file.", dir_okay=False)
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="section.key=value, applied after --config (repeatable)."),
]
StepsOpt = Annotated[int | None, typer.Option("--steps", help="Shortcut for train.steps.")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="Shortcut for train.seed.")]
DeviceOpt = Annotated[
    str | None, typer.Option("--device", help="auto, cpu, cuda or cuda:N (train.device).")
]
OutOpt = Annotated[str | None, typer.Option("--out", help="Run directory (train.out_dir).")]
CompileOpt = Annotated[
    bool | None,
    typer.Option(
        "--compile/--no-compile",
        help="torch.compile runs of train.compile_steps steps (train.compile).",
    ),
]
CudaGraphOpt = Annotated[
    bool | None,
    typer.Option(
        "--cuda-graph/--no-cuda-graph",
        help="Replay whole training steps from CUDA graphs (train.cuda_graph).",
    ),
]
PrecisionOpt = Annotated[
    str | None, typer.Option("--precision", help="fp32 or bf16 (train.precision).")
]


def _version_callback(value: bool) -> None:
    if value:
        out.print(f"nma {nma.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Show version."),
    ] = False,
) -> None:
    """Neural Memory Architectures."""


def _resolve_from_options(
    memory: str | None,
    controller: str | None,
    task: str | None,
    addressing: str | None,
    regularizer: list[str] | None,
    config: Path | None,
    assignments: list[str] | None,
    steps: int | None,
    seed: int | None,
    device: str | None,
    out_dir: str | None,
    compile_: bool | None = None,
    precision: str | None = None,
    cuda_graph: bool | None = None,
) -> Any:
    shortcuts = {
        "components.memory": memory,
        "components.controller": controller,
        "components.task": task,
        "components.addressing": addressing,
        "components.regularizer": regularizer or None,
        "train.steps": steps,
        "train.seed": seed,
        "train.device": device,
        "train.out_dir": out_dir,
        "train.compile": compile_,
        "train.precision": precision,
        "train.cuda_graph": cuda_graph,
    }
    raw = build_raw(config, shortcuts, assignments or [])
    return resolve(raw, get_registry())


@app.command("run")
def run_command(
    memory: MemoryOpt = None,
    controller: ControllerOpt = None,
    task: TaskOpt = None,
    addressing: AddressingOpt = None,
    regularizer: RegularizerOpt = None,
    config: ConfigOpt = None,
    assignments: SetOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out_dir: OutOpt = None,
    compile_: CompileOpt = None,
    precision: PrecisionOpt = None,
    cuda_graph: CudaGraphOpt = None,
    resume: Annotated[
        Path | None,
        typer.Option("--resume", help="Continue the run in this directory from its checkpoint."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress display.")] = True,
    plot: Annotated[
        bool,
        typer.Option(
            "--plot", help="At the end, record the memory and write the figures (as nma plot)."
        ),
    ] = False,
) -> None:
    """Assemble a model from plugins, train it, evaluate it and save the run."""
    from nma.distributed import teardown
    from nma.run import HookError, create_run, resume_run
    from nma.trainer import StopRequested, train

    registry = get_registry()
    if resume is not None:
        given = {
            "--memory": memory,
            "--controller": controller,
            "--task": task,
            "--addressing": addressing,
            "--regularizer": regularizer,
            "--config": config,
            "--set": assignments,
            "--seed": seed,
            "--out": out_dir,
            "--compile": compile_,
            "--precision": precision,
            "--cuda-graph": cuda_graph,
        }
        clash = [flag for flag, value in given.items() if value]
        if clash:
            raise UsageError(
                f"--resume continues a run with its saved configuration; {', '.join(clash)} "
                f"cannot be combined with it (only --steps and --device can)."
            )
        overrides = {
            k: v for k, v in {"train.steps": steps, "train.device": device}.items() if v is not None
        }
        run = resume_run(resume, registry, err, overrides)
        if run.world.is_main:
            err.print(f"Resuming {escape(str(run.run_dir))} at step {run.step}.")
    else:
        resolved = _resolve_from_options(
            memory,
            controller,
            task,
            addressing,
            regularizer,
            config,
            assignments,
            steps,
            seed,
            device,
            out_dir,
            compile_,
            precision,
            cuda_graph,
        )
        run = create_run(resolved, registry, err)
        c = resolved.components
        world = f" × {run.world.size} processes" if run.world.distributed else ""
        scheme = f" ({resolved.addressing_name} addressing)" if resolved.addressing_name else ""
        if run.world.is_main:
            err.print(
                f"Run {escape(str(run.run_dir))}: memory {c.memory}"
                f"{scheme}, "
                f"controller {c.controller}, task {c.task}, on {run.device}{world}, "
                f"{sum(p.numel() for p in run.model.parameters()):,} parameters."
            )

    def on_interrupt(signum: int, frame: object) -> None:
        if run.stop_requested:
            raise KeyboardInterrupt
        run.request_stop()
        err.print("Stopping after this step with a checkpoint (press Ctrl-C again to abort).")

    previous = signal.signal(signal.SIGINT, on_interrupt)
    ended_alike = False  # every rank stopped at the same point: they can meet at a barrier
    try:
        final = train(run, show_progress=progress)
        ended_alike = True
    except StopRequested:
        ended_alike = True
        if run.world.is_main:
            err.print(
                f"Stopped at step {run.step}; checkpoint saved. Continue with: "
                f"nma run --resume {escape(str(run.run_dir))}"
            )
        raise typer.Exit(130) from None
    except HookError as exc:
        run.save_checkpoint()
        run.write_status("failed", error=str(exc))
        raise NmaError(
            f"{exc} A checkpoint of step {run.step} was saved; continue with "
            f"nma run --resume {run.run_dir}"
        ) from None
    except NmaError:
        run.write_status("failed")
        raise
    except KeyboardInterrupt:
        run.write_status("interrupted")
        raise NmaError(f"Aborted at step {run.step}. {_last_checkpoint_hint(run)}") from None
    except Exception as exc:
        (run.run_dir / "error.log").write_text(traceback.format_exc(), encoding="utf-8")
        run.write_status("failed", error=f"{type(exc).__name__}: {exc}")
        raise NmaError(
            f"The run failed at step {run.step + 1} ({type(exc).__name__}: {exc}). The traceback "
            f"is in {run.run_dir / 'error.log'}. {_last_checkpoint_hint(run)}"
        ) from exc
    finally:
        signal.signal(signal.SIGINT, previous)
        teardown(wait=ended_alike)

    if not run.world.is_main:
        return
    if run.continual is not None:
        run.continual.print(out)
    out.print(f"Finished {run.step} steps. Held-out evaluation: {shown_metrics(final)}.")
    out.print(f"Run directory: {escape(str(run.run_dir))}")
    if plot:
        from nma.run_figures import draw_or_explain

        _print_written(draw_or_explain(run), run.run_dir)


def shown_metrics(values: dict[str, Any]) -> str:
    """``loss 0.1234, acc 0.5``: numbers to four significant digits; anything else (a
    non-finite value, which the metrics log keeps as the text ``nan`` or ``inf``) as
    it is."""
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, int | float) else f"{k} {v}" for k, v in values.items()
    )


def _print_written(paths: list[Path], run_dir: Path) -> None:
    names = ", ".join(str(p.relative_to(run_dir)) for p in paths)
    out.print(f"Wrote {escape(names)} in {escape(str(run_dir))}.")


@app.command("plot")
def plot_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with a checkpoint.")],
    sequences: Annotated[
        int, typer.Option(min=1, help="Held-out sequences to record (the first ones).")
    ] = 4,
) -> None:
    """Record a trained run's memory on held-out sequences and write its figures (PNG)
    and analysis into the run directory."""
    from nma.run_figures import plot_run_dir

    _print_written(plot_run_dir(run_dir, get_registry(), err, sequences), run_dir)


@app.command("compare")
def compare_command(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run directories to compare.")],
    output: Annotated[
        Path, typer.Option("--out", help="The figure to write (PNG).", dir_okay=False)
    ] = Path("comparison.png"),
) -> None:
    """Draw several runs' training curves on one figure and print their final metrics."""
    from nma.run_figures import compare_runs

    table, path = compare_runs(run_dirs, output)
    out.print(table)
    out.print(f"Wrote {escape(str(path))}")


def _last_checkpoint_hint(run: Any) -> str:
    from nma.checkpoint import list_checkpoints

    found = list_checkpoints(run.checkpoint_dir)
    if not found:
        return "No checkpoint was written yet."
    return (
        f"The last checkpoint (step {found[-1][0]}) is intact; continue with "
        f"nma run --resume {run.run_dir}"
    )


@app.command("continual")
def continual_command(
    task: Annotated[str, typer.Option("--task", help="A stream task.")] = "permuted-digits",
    memory: MemoryOpt = None,
    controller: ControllerOpt = None,
    addressing: AddressingOpt = None,
    method: Annotated[
        list[str] | None,
        typer.Option(
            "--method",
            help="naive, joint, or regularizers joined by '+' (ewc+replay); repeatable. "
            "Default: naive, every continual-learning regularizer, joint.",
        ),
    ] = None,
    config: ConfigOpt = None,
    assignments: SetOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (one run per method inside it)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show the progress display.")] = True,
) -> None:
    """Learn one stream with several methods side by side (same seed, same model) and
    compare ACC, BWT, FWT and average forgetting."""
    from datetime import datetime

    from nma.config import build_raw
    from nma.continual import (
        compare_methods,
        comparison_table,
        stream_methods,
        write_comparison,
    )

    registry = get_registry()
    methods = method or stream_methods(registry)
    if len(set(methods)) != len(methods):
        raise UsageError(f"A method is named twice: {methods}.")
    shortcuts = {
        "components.memory": memory,
        "components.controller": controller,
        "components.task": task,
        "components.addressing": addressing,
        "train.steps": steps,
        "train.seed": seed,
        "train.device": device,
    }
    raw = build_raw(config, shortcuts, assignments or [])
    if (raw.get("components") or {}).get("regularizer") or (raw.get("train") or {}).get("out_dir"):
        raise UsageError(
            "nma continual sets each method's regularizers and run directory itself: use "
            "--method instead of components.regularizer, and --out instead of train.out_dir."
        )
    out_path = out_dir or Path("runs") / f"continual-{datetime.now():%Y%m%d-%H%M%S}-{task}"
    if out_path.exists() and any(out_path.iterdir()):
        raise UsageError(
            f"The output directory {str(out_path)!r} is not empty; choose another with --out."
        )
    out_path.mkdir(parents=True, exist_ok=True)
    results = compare_methods(raw, methods, out_path, registry, err, progress=progress)
    title = f"{task}: ACC, BWT, FWT and average forgetting per method"
    out.print(comparison_table(results, title))
    command = "nma " + " ".join(sys.argv[1:]) if sys.argv[1:] else "nma continual"
    header = f"# {title}\n\nCommand: `{command}`\n"
    for path in write_comparison(results, out_path, header):
        out.print(f"Wrote {escape(str(path))}")


@app.command("experiment")
def experiment_command(
    name: Annotated[
        str,
        typer.Argument(
            help="copy, associative, priority-sort, continual, logical, temporal, knowledge, "
            "babi or all."
        ),
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="Smoke-test sizes: tiny models, a few steps.")
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Output directory (new or empty); results.md goes there."),
    ] = None,
    device: DeviceOpt = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Go on in --out: configurations that finished there are kept, the others "
            "trained (an unfinished one's directory is moved aside).",
        ),
    ] = False,
) -> None:
    """Run one of the suite's experiments (or all): train, evaluate, draw the figures and
    write results.md, each metric beside its published or claimed target."""
    from nma.experiments import run_named

    path = run_named(name, out_dir, quick=quick, device=device, console=err, resume=resume)
    out.print(f"Wrote {escape(str(path))}")


@app.command("export-memory")
def export_memory_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory with a checkpoint.")],
    output: Annotated[Path, typer.Argument(help="The memory file to write (.safetensors).")],
    index: Annotated[int, typer.Option(help="Which held-out sequence's memory to keep.")] = 0,
) -> None:
    """Save the memory a trained run holds after reading one held-out sequence.

    A new run starts every sequence from it with ``--set train.memory_init=FILE``.
    """
    import torch

    from nma.persistence import save_memory
    from nma.run import resume_run
    from nma.seeding import EVAL_SEED, generator

    run = resume_run(run_dir, get_registry(), err, {}, rewind=False)
    if run.step == 0:
        raise UsageError(f"The run {str(run_dir)!r} has no checkpoint to export memory from.")
    batches = run.parts.task.batches("eval", index + 1, generator(EVAL_SEED, "eval-data"))
    batch = next(iter(batches)).to(run.device)
    if index >= batch.inputs.shape[1]:
        raise UsageError(f"--index {index} is past the held-out set.")
    run.model.eval()
    with torch.no_grad():
        _, state = run.model(batch.inputs)
    save_memory(output, run.model.memory, state.memory, index=index)
    out.print(
        f"Saved the memory after held-out sequence {index} (step {run.step}) to "
        f"{escape(str(output))}."
    )


@app.command("show-config")
def show_config_command(
    memory: MemoryOpt = None,
    controller: ControllerOpt = None,
    task: TaskOpt = None,
    addressing: AddressingOpt = None,
    regularizer: RegularizerOpt = None,
    config: ConfigOpt = None,
    assignments: SetOpt = None,
    steps: StepsOpt = None,
    seed: SeedOpt = None,
    device: DeviceOpt = None,
    out_dir: OutOpt = None,
    compile_: CompileOpt = None,
    precision: PrecisionOpt = None,
    cuda_graph: CudaGraphOpt = None,
) -> None:
    """Print the resolved configuration (TOML) of the run these options describe."""
    resolved = _resolve_from_options(
        memory,
        controller,
        task,
        addressing,
        regularizer,
        config,
        assignments,
        steps,
        seed,
        device,
        out_dir,
        compile_,
        precision,
        cuda_graph,
    )
    sys.stdout.write(resolved.to_toml())


@app.command("list-plugins")
def list_plugins_command() -> None:
    """List every plugin and component: kind, name, distribution, version, status."""
    registry = get_registry()
    table = Table(title="nma plugins")
    for column in ("kind", "name", "distribution", "version", "status"):
        table.add_column(column)
    for kind in KINDS:
        for name in registry.names(kind):
            component = registry.components[kind][name]
            status = "ok"
            if component.rivals:
                others = ", ".join(p.distribution for p in component.rivals)
                status = f"[red]conflict[/red]: also claimed by {escape(others)}"
            p = component.plugin
            table.add_row(kind, name, escape(p.distribution), p.version, status)
    for plugin in registry.plugins:
        if plugin.status == "failed":
            table.add_row(
                "-",
                escape(plugin.name),
                escape(plugin.distribution),
                plugin.version,
                f"[red]failed[/red]: {escape(plugin.error)}",
            )
        elif plugin.status == "disabled":
            table.add_row(
                "-",
                escape(plugin.name),
                escape(plugin.distribution),
                plugin.version,
                "[yellow]disabled[/yellow]",
            )
        elif plugin.error:
            table.add_row(
                "-",
                escape(plugin.name),
                escape(plugin.distribution),
                plugin.version,
                f"[yellow]partly failed[/yellow]: {escape(plugin.error)}",
            )
    out.print(table)


@app.command("info")
def info_command(
    kind: Annotated[str, typer.Argument(help=f"One of: {', '.join(KINDS)}.")],
    name: Annotated[str, typer.Argument(help="The component's registered name.")],
) -> None:
    """Show a component's documentation and options (types, defaults, limits)."""
    import difflib

    registry = get_registry()
    if kind not in KINDS:
        close = difflib.get_close_matches(kind, KINDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise UsageError(f"Unknown kind {kind!r}.{hint} Kinds: {', '.join(KINDS)}.")
    cls = registry.get(kind, name)  # type: ignore[arg-type]
    plugin = registry.components[kind][name].plugin  # type: ignore[index]
    source = f"{escape(plugin.distribution)} {plugin.version}"
    out.print(f"[bold]{kind} {escape(name)}[/bold]  ({source})")
    out.print(escape(inspect.getdoc(cls) or "(no documentation)"))
    table = Table(title="options")
    for column in ("option", "type", "default", "limits", "description"):
        table.add_column(column)
    for field_name, field in cls.Config.model_fields.items():
        default = field.get_default(call_default_factory=True)
        table.add_row(
            field_name,
            escape(_type_name(field.annotation)),
            escape(repr(default)),
            escape(_limits(field.metadata)),
            escape(field.description or ""),
        )
    out.print(table)


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _limits(metadata: list[Any]) -> str:
    parts = []
    symbols = {
        "gt": ">",
        "ge": ">=",
        "lt": "<",
        "le": "<=",
        "min_length": "min length",
        "max_length": "max length",
        "pattern": "matches",
        "multiple_of": "multiple of",
    }
    for item in metadata:
        for attr, symbol in symbols.items():
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} {value}")
    return ", ".join(parts)


def _register_plugin_commands(registry: Registry) -> None:
    hook = registry.plugin_manager.hook.nma_register_commands
    for impl in reversed(hook.get_hookimpls()):
        try:
            impl.function(app=app)
        except Exception as exc:
            for plugin in registry.plugins:
                if f"{plugin.distribution}:{plugin.name}" == impl.plugin_name:
                    plugin.error = f"adding its commands failed: {type(exc).__name__}: {exc}"


def main() -> None:
    """Entry point of the ``nma`` command."""
    try:
        registry = get_registry()
        _register_plugin_commands(registry)
        app()
    except NmaError as exc:
        err.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        if os.environ.get("NMA_DEBUG"):
            traceback.print_exc()
        sys.exit(exc.exit_code)
