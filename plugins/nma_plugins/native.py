"""Native CPU kernels for the fused memory steps and the LSTM cell, compiled on first use.

A fused step in Python (``ntm_step.py``) already runs as one autograd node, but each
of its ~110 tensor operations per time step pays the interpreter's and the
dispatcher's overhead on tensors of a few thousand numbers, which on a CPU costs
more than the arithmetic. The sources in ``csrc/`` compute the same steps
in plain loops, one batch item per thread task, and register them as the operators
``torch.ops.nma_native.*``.

They are compiled with PyTorch's C++ extension tools (a C++ compiler and ninja) the
first time a process needs them, into a cache directory keyed by the sources and the
torch version (``$NMA_NATIVE_CACHE``, else ``~/.cache/nma/native``); later processes
load the cached library. Where no compiler is available the memories fall back to
the Python fused steps, which compute the same values, and a warning says why.
``NMA_NATIVE=0`` turns the native kernels off.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import time
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

CSRC = Path(__file__).parent / "csrc"
SOURCES = (
    CSRC / "ntm_step.cpp",
    CSRC / "dnc_step.cpp",
    CSRC / "lstm_cell.cpp",
    CSRC / "lstm_sequence.cpp",
    CSRC / "vector_math.cpp",
)
HEADERS = (CSRC / "common.h", CSRC / "steps.h", CSRC / "vector_math.h")
LIBRARY = "nma_native"


def _compiler_flags() -> list[str]:
    """Optimisation flags; OpenMP, which ``at::parallel_for`` needs to split the batch
    across PyTorch's threads; no floating-point traps, without which the compiler keeps
    the branch-free ``exp``/``log`` of ``vector_math.h`` scalar (the kernels never read
    the floating-point exception flags); AVX2 and FMA where PyTorch found them on this
    CPU."""
    flags = ["-O3", "-fopenmp", "-fno-trapping-math"]
    if torch.backends.cpu.get_cpu_capability() in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]
    return flags


def _put_ninja_on_path() -> None:
    """PyTorch's builder runs ``ninja`` from ``PATH``; the ``ninja`` package (a
    dependency) installs it beside the interpreter, which is on ``PATH`` only in an
    activated environment."""
    try:
        import ninja
    except ImportError:
        return
    directory = str(ninja.BIN_DIR)
    if directory not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([directory, os.environ.get("PATH", "")])


def _build_directory(flags: list[str]) -> Path:
    digest = hashlib.sha256(" ".join([torch.__version__, *flags]).encode())
    for source in (*SOURCES, *HEADERS):
        digest.update(source.read_bytes())
    root = Path(os.environ.get("NMA_NATIVE_CACHE", Path.home() / ".cache" / "nma" / "native"))
    return root / digest.hexdigest()[:16]


STALE_AFTER_DAYS = 30
"""Builds in the cache that no process has loaded for this long are removed."""
_BUILD_NAME = re.compile(r"[0-9a-f]{16}")


def _mark_used_and_prune(build: Path) -> None:
    """Record that ``build`` was loaded now, and remove the cache's other builds (one per
    version of the sources, flags and torch) that nothing has loaded for
    :data:`STALE_AFTER_DAYS` days. Only directories named like a build are touched, and
    a failure here never stops the kernels from loading."""
    try:
        (build / "last-used").touch()
        cutoff = time.time() - STALE_AFTER_DAYS * 24 * 3600
        for other in build.parent.iterdir():
            if other == build or not other.is_dir() or not _BUILD_NAME.fullmatch(other.name):
                continue
            marker = other / "last-used"
            used = (marker if marker.exists() else other).stat().st_mtime
            if used < cutoff:
                shutil.rmtree(other, ignore_errors=True)
    except OSError:
        pass


def _registered() -> bool:
    """Whether this process has loaded the library already (it registers its ops once)."""
    return hasattr(torch.ops.nma_native, "dnc_forward")


@cache
def native_available() -> bool:
    """Whether the native kernels are loaded (compiling them if needed)."""
    if os.environ.get("NMA_NATIVE", "1") == "0":
        return False
    if _registered():
        return True
    try:
        from torch.utils.cpp_extension import load

        _put_ninja_on_path()
        flags = _compiler_flags()
        build = _build_directory(flags)
        build.mkdir(parents=True, exist_ok=True)
        if not (build / f"{LIBRARY}.so").exists():
            print(
                f"nma: compiling the native memory kernels into {build} (once; about a minute)",
                file=sys.stderr,
                flush=True,
            )
        load(
            name=LIBRARY,
            sources=[str(s) for s in SOURCES],
            extra_cflags=flags,
            extra_ldflags=["-fopenmp"],
            build_directory=str(build),
            is_python_module=False,
            verbose=False,
        )
        _mark_used_and_prune(build)
        from nma_plugins import native_fakes

        native_fakes.register()
    except Exception as error:  # noqa: BLE001 - any failure means: use the Python steps
        reason = " ".join(str(error).split())
        if len(reason) > 300:  # a compiler's log can run to pages
            reason = reason[:300] + "..."
        warnings.warn(
            "nma: the native memory kernels could not be built or loaded, so the Python "
            "fused steps run instead (same values, slower on the CPU; NMA_NATIVE=0 "
            f"chooses them without trying): {reason}",
            RuntimeWarning,
            stacklevel=2,
        )
        return False
    return True


@torch.compiler.assume_constant_result
def _native_on() -> bool:
    """:func:`native_available`, which ``torch.compile`` evaluates once while tracing."""
    return native_available()


def native_ops() -> Any:
    """``torch.ops.nma_native``, loading the library first if need be.

    Raises:
        RuntimeError: where the kernels are switched off or cannot be built.
    """
    if not _native_on():
        raise RuntimeError("nma's native kernels are not available (see the warning above)")
    return torch.ops.nma_native


def use_native(state: Tensor, *inputs: Tensor) -> bool:
    """Whether a fused step should call the native kernels: its ``state`` (whose dtype
    the step computes in) in float32 or float64, it and the other ``inputs`` on the
    CPU, and the kernels available. Compiled graphs call them too, as external
    kernels (:mod:`nma_plugins.native_fakes`)."""
    if state.dtype not in (torch.float32, torch.float64):
        return False
    if any(t.device.type != "cpu" for t in (state, *inputs)):
        return False
    return _native_on()
