"""The ``nma`` command through its real console-script entry point."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import TINY, Result, env_with_path, make_distribution, run_nma


def flat(text: str) -> str:
    """Collapse Rich's line wrapping so messages can be matched."""
    return " ".join(text.split())


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert result.code == 2, result.output
    assert "Traceback" not in result.output, result.output
    for fragment in fragments:
        assert fragment in flat(result.output), result.output


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "tiny"
    with_progress = [arg for arg in TINY if arg != "--no-progress"]
    result = run_nma("run", *with_progress, "--steps", "10", "--out", str(out))
    assert result.code == 0, result.output
    # the progress display: step, loss, main metric, speed, time left
    for fragment in ("step", "10/10", "loss", "bit_errors", "steps/s", "left"):
        assert fragment in result.stderr, result.stderr
    assert "Held-out evaluation" in result.stdout
    return out


def test_version():
    result = run_nma("--version")
    assert result.code == 0
    assert result.stdout.strip() == "nma 0.1.0"


def test_list_plugins_shows_every_first_party_component():
    result = run_nma("list-plugins")
    assert result.code == 0, result.output
    for kind, name, dist in [
        ("memory", "ntm", "nma-plugins"),
        ("addressing", "content", "nma-plugins"),
        ("addressing", "ntm", "nma-plugins"),
        ("controller", "lstm", "nma-plugins"),
        ("controller", "mlp", "nma-plugins"),
        ("task", "copy", "nma-tasks"),
        ("regularizer", "l2", "nma-plugins"),
    ]:
        assert any(
            kind in line and f" {name} " in line and dist in line and "ok" in line
            for line in result.stdout.splitlines()
        ), (kind, name, result.stdout)


def test_info_shows_documentation_and_options():
    result = run_nma("info", "memory", "ntm")
    assert result.code == 0, result.output
    text = flat(result.stdout)
    assert "Neural Turing Machine" in text
    for option in ("slots", "width", "read_heads", "write_heads"):
        assert option in text
    assert ">= 1" in text  # limits come from the options model


def test_show_config_applies_file_then_set(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[memory]\nslots = 40\n[train]\nsteps = 5\n", encoding="utf-8")
    result = run_nma(
        "show-config", "--config", str(config), "--set", "train.steps=6", "--controller", "mlp"
    )
    assert result.code == 0, result.output
    assert "slots = 40" in result.stdout
    assert "steps = 6" in result.stdout
    assert 'controller = "mlp"' in result.stdout


def test_run_writes_its_artifacts(finished_run):
    for name in ("config.toml", "metrics.jsonl", "run.json", "summary.json"):
        assert (finished_run / name).is_file(), name
    assert list((finished_run / "checkpoints").glob("step-00000010.safetensors"))
    assert '"status": "finished"' in (finished_run / "run.json").read_text()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["run", "--memory", "ntn"], ["Unknown memory 'ntn'", "Did you mean 'ntm'?"]),
        (["run", "--task", "kopy"], ["Unknown task 'kopy'", "Did you mean 'copy'?"]),
        (["run", "--set", "memory.slotz=3"], ["unknown option 'slotz'", "Did you mean 'slots'?"]),
        (["run", "--steps", "-5"], ["'train.steps'", "greater than or equal to 0"]),
        (["run", "--set", "trian.steps=1"], ["Unknown configuration section 'trian'"]),
        (["run", "--set", "steps"], ["--set expects section.key=value"]),
        (["run", "--device", "tpu"], ["'train.device'"]),
        (["run", "--config", "no/such/file.toml"], ["Cannot read the configuration file"]),
        (["info", "memoyr", "ntm"], ["Unknown kind 'memoyr'", "Did you mean 'memory'?"]),
        (["info", "memory", "dnx"], ["Unknown memory 'dnx'"]),
        (["run", "--resume", "no/such/run"], ["is not a run directory"]),
        (["run", "--addressing", "ntn"], ["Unknown addressing 'ntn'"]),
    ],
)
def test_bad_input_is_one_paragraph_and_exit_2(args, fragments):
    assert_usage_error(run_nma(*args), *fragments)


def test_unknown_cli_flag_is_exit_2():
    result = run_nma("run", "--stpes", "3")
    assert result.code == 2
    assert "Traceback" not in result.output
    assert "No such option" in result.output


def test_invalid_toml(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\n", encoding="utf-8")
    assert_usage_error(run_nma("run", "--config", str(bad)), "is not valid TOML")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message when CUDA is missing")
def test_cuda_without_cuda_is_exit_2(tmp_path):
    result = run_nma("run", *TINY, "--device", "cuda", "--out", str(tmp_path / "r"))
    assert_usage_error(result, "--device cuda was asked for")


def test_out_dir_holding_a_run_is_refused(finished_run):
    assert_usage_error(
        run_nma("run", *TINY, "--out", str(finished_run)), "already holds a run", "--resume"
    )


def test_resume_refuses_changed_components(finished_run):
    assert_usage_error(
        run_nma("run", "--resume", str(finished_run), "--memory", "ntm"),
        "--memory cannot be combined",
    )


def test_corrupt_checkpoint_is_exit_2(finished_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy)
    checkpoint = next((copy / "checkpoints").glob("*.safetensors"))
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])
    assert_usage_error(
        run_nma("run", "--resume", str(copy), "--steps", "20"), "is corrupt", checkpoint.name
    )


def test_failed_plugin_is_listed_and_only_its_run_fails(tmp_path):
    site = make_distribution(
        tmp_path / "site",
        "broken-nma",
        "broken_cli_plugin",
        "raise ImportError('needs libfoo')\n",
    )
    env = env_with_path(site)
    listing = run_nma("list-plugins", env=env)
    assert listing.code == 0, listing.output
    line = next(line for line in listing.stdout.splitlines() if "broken-nma" in line)
    assert "failed" in line and "needs libfoo" in flat(listing.stdout)
    assert "ntm" in listing.stdout  # everything else still works
    result = run_nma("run", "--memory", "missing-mem", env=env)
    assert_usage_error(result, "Unknown memory 'missing-mem'", "needs libfoo")


def test_plugin_adds_a_subcommand(tmp_path):
    source = """
    import typer
    from nma import hookimpl

    @hookimpl
    def nma_register_commands(app):
        @app.command("hello")
        def hello(name: str = "world") -> None:
            '''Say hello.'''
            typer.echo(f"hello {name}")
    """
    site = make_distribution(tmp_path / "site", "hello-nma", "hello_cli_plugin", source)
    result = run_nma("hello", "--name", "memory", env=env_with_path(site))
    assert result.code == 0, result.output
    assert result.stdout.strip() == "hello memory"


RIVAL = """
from nma import hookimpl
from nma_tasks.copy import CopyTask


class OtherCopy(CopyTask):
    pass


@hookimpl
def nma_register_tasks(register):
    register("copy", OtherCopy)
"""


def test_name_claimed_twice_fails_the_run_naming_both(tmp_path):
    site = make_distribution(tmp_path / "site", "rival-nma", "rival_copy_plugin", RIVAL)
    env = env_with_path(site)
    listing = run_nma("list-plugins", env=env)
    assert listing.code == 0
    assert "conflict" in listing.stdout and "rival-nma" in listing.stdout
    result = run_nma("run", "--task", "copy", env=env)
    assert_usage_error(result, "claimed by more than one distribution", "nma-tasks", "rival-nma")


def test_a_non_finite_final_metric_is_shown_not_a_crash(tmp_path):
    """A diverged run's NaN loss comes back from the metrics log as the text 'nan'; the
    closing line shows it (it once raised a format error at the end of the run)."""
    from nma.cli import shown_metrics
    from nma.metrics_log import MetricsLog

    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.append(3, "eval", {"loss": float("nan"), "bit_errors": 2.0, "acc": float("inf")})
    final = {k: v for k, v in log.read()[-1].items() if k not in ("step", "split")}
    assert shown_metrics(final) == "loss nan, bit_errors 2, acc inf"
