"""``nma experiment``: copy --quick end to end, bad input, every configuration valid,
and the report's derived figures on constructed cases."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from nma.cli import main
from nma.config import resolve
from nma.continual import MethodResult, method_config
from nma.continual_record import ContinualRecord
from nma.experiments import EXPERIMENTS, experiment_names
from nma.experiments.runner import _continual_rows, raw_config
from nma.experiments.spec import Target
from nma.registry import get_registry
from tests.figures_helpers import assert_png

FIGURES = ["training-curves", "memory-usage", "attention-patterns", "memory-contents"]


def call(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """The ``nma`` entry point in this process; its exit code and output in one line."""
    old = sys.argv
    sys.argv = ["nma", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, " ".join((captured.out + captured.err).split())


def test_copy_quick_writes_results_and_figures(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    out = tmp_path / "copy"
    code, output = call(
        capsys, "experiment", "copy", "--quick", "--out", str(out), "--device", "cpu"
    )
    assert code == 0, output
    results = (out / "results.md").read_text(encoding="utf-8")
    rows = [line for line in results.splitlines() if line.startswith("| copy |")]
    assert [row.split(" | ")[1] for row in rows] == ["ntm-lstm", "ntm-lstm-length-100"]
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[2] == "bit_errors" and float(cells[3]) >= 0
        assert cells[4].startswith("≤ 1 (near-perfect") and cells[5] == "not judged (quick)"
    links = re.findall(r"!\[[^]]*\]\(([^)]+)\)", results)
    assert len(links) >= 2 * len(FIGURES)
    for link in links:
        assert_png(out / link)
    for config in ("ntm-lstm", "ntm-lstm-length-100"):
        for name in FIGURES:
            assert f"{config}/figures/{name}.png" in links
        assert (out / config / "summary.json").is_file()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["experiment", "cpy", "--quick"], "Unknown experiment 'cpy'. Did you mean 'copy'?"),
        (["experiment", "nothing-like-it"], "Experiments: copy, associative, priority-sort"),
    ],
)
def test_unknown_experiment_is_one_paragraph(capsys, args: list[str], expected: str) -> None:  # noqa: ANN001
    code, output = call(capsys, *args)
    assert code == 2 and expected in output and "Traceback" not in output


def test_non_empty_output_directory_is_refused(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    (tmp_path / "something").write_text("x")
    code, output = call(capsys, "experiment", "copy", "--quick", "--out", str(tmp_path))
    assert code == 2 and "is not empty" in output and "Traceback" not in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


def test_missing_name_is_a_usage_error(capsys) -> None:  # noqa: ANN001
    code, _ = call(capsys, "experiment")
    assert code == 2


def test_all_names_every_experiment_of_the_issue() -> None:
    assert experiment_names("all") == [
        "copy", "associative", "priority-sort", "continual",
        "logical", "temporal", "knowledge", "babi",
    ]  # fmt: skip


@pytest.mark.parametrize("quick", [False, True])
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_every_configuration_resolves(name: str, quick: bool, tmp_path: Path) -> None:
    """Full and quick settings name registered components and valid options."""
    registry = get_registry()
    for config in EXPERIMENTS[name].configurations:
        raw = raw_config(config.settings(quick))
        if EXPERIMENTS[name].kind == "continual":  # each method as nma continual builds it
            for method in config.methods:
                resolved = method_config(raw, method, registry, str(tmp_path / method))
                assert resolved.components.task == config.options["components.task"]
            continue
        resolved = resolve(raw, registry)
        assert resolved.components.task == config.options["components.task"]
        for target in config.targets:
            assert target.source


def test_target_reached_and_described() -> None:
    at_least = Target("accuracy", 0.9, True, "claim")
    at_most = Target("error", 0.126, False, "MemN2N")
    assert at_least.reached(0.9) and not at_least.reached(0.89)
    assert at_most.reached(0.1) and not at_most.reached(0.2)
    assert at_least.describe() == "≥ 0.9 (claim)" and at_most.describe() == "≤ 0.126 (MemN2N)"
    assert Target("bit_errors", None, False, "none").reached(3.0) is None


def _result(method: str, rows: list[list[float]], joint: bool = False) -> MethodResult:
    record = ContinualRecord(["a", "b"], "accuracy", joint=joint)
    record.rows = rows
    record.initial = [0.1, 0.1]
    return MethodResult(method, record, 1.0, Path(method))


def test_continual_rows_on_a_constructed_case() -> None:
    """naive forgets 0.6 of experience a, replay 0.06: 90% less; joint's ACC 0.9 is
    0.05 above replay's 0.85."""
    results = [
        _result("naive", [[0.9, 0.1], [0.3, 0.9]]),
        _result("replay", [[0.9, 0.1], [0.84, 0.86]]),
        _result("joint", [[0.9, 0.9]], joint=True),
    ]
    rows = {
        r.metric: r.value
        for r in _continual_rows(
            EXPERIMENTS["continual"], EXPERIMENTS["continual"].configurations[0], results
        )
    }
    assert rows["forgetting_reduction"] == pytest.approx(0.9)
    assert rows["acc_below_joint"] == pytest.approx(0.05)
    assert rows["naive forgetting"] == pytest.approx(0.6)


def test_a_failed_experiment_leaves_the_others_and_the_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suite goes on after a failure; both reports keep what finished and the error."""
    from nma.experiments import ExperimentFailed, run_several

    good = EXPERIMENTS["priority-sort"]
    bad_config = replace(good.configurations[0], name="bad", quick={"memory.slots": -3})
    broken = replace(good, name="broken", configurations=(good.configurations[0], bad_config))
    monkeypatch.setitem(EXPERIMENTS, "broken", broken)
    out = tmp_path / "suite"
    with pytest.raises(ExperimentFailed, match=r"1 of the 2 experiments failed \(broken\)"):
        run_several(["broken", "priority-sort"], out, "Suite", quick=True, device="cpu")
    combined = (out / "results.md").read_text(encoding="utf-8")
    rows = [line.split(" | ")[:2] for line in combined.splitlines() if line.startswith("| ")]
    assert ["| broken", "ntm-lstm"] in rows and ["| priority-sort", "ntm-lstm"] in rows
    assert ["| broken", "bad"] not in rows
    failed = combined.split("## Failed")[1].split("##")[0]
    assert "**broken**" in failed and "'bad'" in failed and "slots" in failed
    assert "## Failed" in (out / "broken" / "results.md").read_text(encoding="utf-8")
    assert "## Failed" not in (out / "priority-sort" / "results.md").read_text(encoding="utf-8")


def test_resume_keeps_finished_configurations_and_redoes_the_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nma.errors import UsageError
    from nma.experiments import run_named

    base = EXPERIMENTS["priority-sort"].configurations[0]
    two = replace(
        EXPERIMENTS["priority-sort"],
        name="two",
        configurations=(replace(base, name="a"), replace(base, name="b")),
    )
    monkeypatch.setitem(EXPERIMENTS, "two", two)
    out = tmp_path / "two"
    run_named("two", out, quick=True, device="cpu")
    kept = (out / "a" / "summary.json").read_bytes(), (out / "a" / "summary.json").stat()
    (out / "b" / "outcome.json").unlink()  # as if b had been interrupted

    with pytest.raises(UsageError, match="not empty.*--resume"):
        run_named("two", out, quick=True, device="cpu")
    with pytest.raises(UsageError, match="holds a --quick run, and this is a full one"):
        run_named("two", out, quick=False, device="cpu", resume=True)
    with pytest.raises(UsageError, match="give --out"):
        run_named("two", None, quick=True, resume=True)

    results = run_named("two", out, quick=True, device="cpu", resume=True)
    assert (out / "a" / "summary.json").read_bytes() == kept[0]
    assert (out / "a" / "summary.json").stat().st_mtime_ns == kept[1].st_mtime_ns
    assert (out / "b.unfinished-1" / "summary.json").is_file()  # the old b, kept aside
    assert (out / "b" / "outcome.json").is_file()
    text = results.read_text(encoding="utf-8")
    assert [r.split(" | ")[1] for r in text.splitlines() if r.startswith("| two |")] == ["a", "b"]
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", text):
        assert_png(out / link)

    changed = replace(
        two,
        configurations=(
            two.configurations[0],
            replace(base, name="b", quick={**base.quick, "train.steps": 21}),
        ),
    )
    monkeypatch.setitem(EXPERIMENTS, "two", changed)
    run_named("two", out, quick=True, device="cpu", resume=True)
    assert (out / "a" / "summary.json").stat().st_mtime_ns == kept[1].st_mtime_ns
    assert (out / "b.unfinished-2").is_dir()  # b's settings changed: trained again
    assert json.loads((out / "b" / "outcome.json").read_text())["settings"]["train.steps"] == 21
