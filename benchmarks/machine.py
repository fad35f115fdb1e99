"""One line describing the machine a benchmark ran on, for its recorded results."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch


def machine(device: torch.device | None = None) -> str:
    """CPU model, visible cores, torch version and threads, Python; the GPU if ``device``
    is a CUDA device."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = (
        f"{cpu}, {os.cpu_count()} cores visible, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), Python {platform.python_version()}"
    )
    if device is not None and device.type == "cuda":
        text += f", {torch.cuda.get_device_name(device)}"
    return text
