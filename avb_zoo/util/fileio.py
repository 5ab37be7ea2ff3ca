"""Atomic writes: nothing half-written.

Torch-free, so the runtime writes its outputs the same way.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
from pathlib import Path
from typing import Any

from avb_zoo.errors import OutputError


def is_folder(path: str | Path) -> bool:
    """``Path.is_dir`` for what a user typed: a name the system refuses (too long, odd bytes) is no folder.

    Python's own check raises for a name longer than the system allows, where the caller wants a plain no
    (the text may still be a model id).
    """
    try:
        return Path(path).expanduser().is_dir()
    except (OSError, ValueError):
        return False


def is_present(path: str | Path) -> bool:
    """``Path.exists`` without the exception for names the system refuses (see ``is_folder``)."""
    try:
        return Path(path).expanduser().exists()
    except (OSError, ValueError):
        return False


def open_temp_beside(path: Path, suffix: str = ".tmp") -> tuple[int, Path]:
    """Create a fresh hidden temp file in ``path``'s folder (same filesystem, so os.replace is atomic).

    Unlike tempfile.mkstemp (mode 0600), the file gets the usual umask-derived permissions.
    """
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{suffix}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"{path.parent}: could not create a temp file for {path.name}")


TEMP_NAME = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # what open_temp_beside names (suffix .tmp)


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete the hidden temp files :func:`atomic_write_bytes` left in ``folder`` (not below it) when a process
    died mid-write; returns them. Call it only when no other process writes into ``folder``. Symbolic links
    are left alone (their targets are not ours)."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    for entry in entries:
        if TEMP_NAME.match(entry.name) and not entry.is_symlink() and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return removed


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file in the same folder and an atomic rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = open_temp_beside(path)
    except OSError as err:
        raise OutputError(f"cannot write to {path.parent}: {err.strerror or err}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def ensure_writable_dir(path: str | Path) -> Path:
    """Create ``path`` if needed and prove it is writable now, before any long work starts."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise OutputError(f"output folder {path} is not writable: {err.strerror or err}") from None
    return path
