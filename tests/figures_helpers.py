"""Checks that a file is a real, non-blank PNG image of a given size."""

from __future__ import annotations

import struct
from pathlib import Path

from matplotlib.image import imread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the PNG header; fails if ``path`` is not a PNG."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def assert_png(path: Path, size: tuple[int, int] | None = None) -> None:
    """``path`` is a PNG that decodes, of ``size`` pixels if given, and not blank."""
    width, height = png_size(path)
    if size is not None:
        assert (width, height) == size, f"{path.name}: {(width, height)} != {size}"
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    assert pixels[..., :3].var() > 0, f"{path.name} is blank"
