"""Writing a command's outputs all or nothing: each file atomically, and none left if a later one fails."""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from avb_zoo.errors import OutputError
from avb_zoo.util.fileio import atomic_write_bytes


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def check_suffix(path: str | Path, suffix: str, what: str) -> Path:
    """``path`` as a Path, if it ends in ``suffix`` (catches swapped arguments before any work is done)."""
    path = Path(path)
    if path.suffix.lower() != suffix:
        raise OutputError(f"{what} {path} must end in {suffix}")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder")
    return path


def write_all(files: Mapping[Path, bytes]) -> None:
    """Write every file atomically; if one fails, remove those already written by this call."""
    written: list[Path] = []
    try:
        for path, data in files.items():
            atomic_write_bytes(path, data)
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
