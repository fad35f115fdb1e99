"""No component synchronises with the host inside a training step.

A CUDA graph (``train.cuda_graph``) cannot capture a step that reads a value back
to the host (``.item()``, ``nonzero``, a Python ``if`` on a tensor) or copies a
Python number into a device tensor (``t[0] = 1``); on the GPU either fails the
capture. Both leave a trace in the operators dispatched, which is checked here on
the CPU for every registered memory: forward, loss and backward of a small model.
"""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from nma.build import build_components
from nma.config import build_raw, resolve
from nma.registry import get_registry
from nma.seeding import generator

SMALL = ["memory.slots=8", "memory.width=4", "controller.hidden_size=16", "task.width=3"]
READS_BACK = {torch.ops.aten._local_scalar_dense.default, torch.ops.aten.nonzero.default}


class HostTraffic(TorchDispatchMode):
    """Records operators that would read back to, or copy from, the host on CUDA."""

    def __init__(self) -> None:
        super().__init__()
        self.lifted: set[int] = set()  # Python numbers turned into (host) tensors
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        kwargs = kwargs or {}
        if func in READS_BACK:
            self.found.append(str(func))
        if func in (torch.ops.aten.copy_.default, torch.ops.aten._to_copy.default):
            source = args[1] if func is torch.ops.aten.copy_.default else args[0]
            if id(source) in self.lifted:
                self.found.append(f"{func} of a Python number")
        out = func(*args, **kwargs)
        if func is torch.ops.aten.lift_fresh.default:
            self.lifted.add(id(out))
        return out


@pytest.mark.parametrize("memory", get_registry().names("memory"))
def test_a_training_step_never_talks_to_the_host(memory: str) -> None:
    registry = get_registry()
    fields = registry.get("memory", memory).Config.model_fields
    sizes = [o for o in SMALL if not o.startswith("memory.") or o[7:].split("=")[0] in fields]
    raw = build_raw(None, {"components.memory": memory}, [*sizes, "task.max_length=3"])
    torch.manual_seed(0)
    parts = build_components(resolve(raw, registry), registry)
    batch = next(parts.task.batches("train", 2, generator(0, "host-sync")))
    traffic = HostTraffic()
    with traffic:
        outputs = parts.model(batch.inputs)[0]
        parts.task.loss(outputs, batch).backward()
    assert traffic.found == [], f"{memory}: {sorted(set(traffic.found))}"


def test_the_check_sees_a_read_back_and_a_number_copied_in() -> None:
    traffic = HostTraffic()
    with traffic:
        weights = torch.zeros(4)
        weights[0] = 1
        if weights.sum() > 0:
            pass
    assert any("Python number" in f for f in traffic.found)
    assert any("_local_scalar_dense" in f for f in traffic.found)
