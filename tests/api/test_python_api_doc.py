"""docs/python-api.md: its Python blocks run, in order, and it names every public name."""

from __future__ import annotations

import re
from pathlib import Path

import torch

import nma.layers
import nma.loop
import nma.memories
import nma.models
import nma.training

DOC = Path(__file__).resolve().parents[2] / "docs" / "python-api.md"


def test_every_python_block_runs(capsys) -> None:  # noqa: ANN001
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 10
    namespace: dict[str, object] = {"__name__": "python_api_doc"}
    with torch.random.fork_rng():
        for index, block in enumerate(blocks):
            exec(compile(block, f"{DOC.name}, block {index + 1}", "exec"), namespace)  # noqa: S102


def test_every_public_name_is_documented_with_its_arguments() -> None:
    text = DOC.read_text(encoding="utf-8")
    for module in (nma.layers, nma.memories, nma.models, nma.training):
        for name in module.__all__:
            assert f"`{name}" in text, f"{module.__name__}.{name} is not in {DOC.name}"
            obj = getattr(module, name)
            assert obj.__doc__ and ("Args:" in obj.__doc__ or "Attributes:" in obj.__doc__
                                    or name in {"RegisteredMemory"}
                                    or module is nma.training and callable(obj)), name  # fmt: skip
    for name in ("MemoryTrainer", "ContinualLearningTrainer", "ContinualLearningModel"):
        assert getattr(nma, name).__doc__, name


def test_the_shared_loop_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    public = [n for n in vars(nma.loop) if not n.startswith("_") and callable(getattr(nma.loop, n))]
    for name in public:
        if getattr(nma.loop, name).__module__ == "nma.loop":
            assert f"`{name}(" in text, name
