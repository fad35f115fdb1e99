"""The plugin in docs/plugins.md, built from the page alone and installed with pip."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TINY, env_with_path, run_nma

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
FILE_BLOCK = re.compile(r"<!-- file: (?P<path>[^>]+) -->\n```[a-z]*\n(?P<body>.*?)```", re.S)


@pytest.fixture(scope="module")
def installed_guide_plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("guide")
    files = {m["path"].strip(): m["body"] for m in FILE_BLOCK.finditer(GUIDE.read_text())}
    assert set(files) == {"nma-ringbuffer/pyproject.toml", "nma-ringbuffer/nma_ringbuffer.py"}
    for name, body in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(body, encoding="utf-8")
    site = root / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
            "--no-build-isolation", "--target", str(site), str(root / "nma-ringbuffer"),
        ],
        check=True,
    )  # fmt: skip
    assert list(site.glob("nma_ringbuffer-0.1.0.dist-info"))
    return site


def test_guide_plugin_is_listed(installed_guide_plugin):
    result = run_nma("list-plugins", env=env_with_path(installed_guide_plugin))
    assert result.code == 0, result.output
    line = next(line for line in result.stdout.splitlines() if "ring-buffer" in line)
    assert "memory" in line and "nma-ringbuffer" in line and "0.1.0" in line and "ok" in line


def test_guide_plugin_runs_with_builtin_components(installed_guide_plugin, tmp_path):
    env = env_with_path(installed_guide_plugin)
    info = run_nma("info", "memory", "ring-buffer", env=env)
    assert info.code == 0 and "slots" in info.stdout
    out = tmp_path / "run"
    result = run_nma(
        "run", "--memory", "ring-buffer", "--controller", "lstm", "--task", "copy",
        *TINY[4:], "--set", "memory.slots=8", "--steps", "10", "--out", str(out), env=env,
    )  # fmt: skip
    assert result.code == 0, result.output
    assert "ring-buffer plugin: evaluated at step 10" in result.output  # its run hook ran
    assert (out / "summary.json").exists()
    assert 'memory = "ring-buffer"' in (out / "config.toml").read_text()
