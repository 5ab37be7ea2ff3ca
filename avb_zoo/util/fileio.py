"""Atomic writes and checked safetensors reads: nothing half-written, nothing trusted before it is checked.

torch is imported only by the safetensors functions, so the torch-free runtime can write files atomically too.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avb_zoo.errors import CheckpointError, OutputError, shown
from avb_zoo.util.bounded import read_regular

if TYPE_CHECKING:
    import torch

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
MAX_WEIGHTS_BYTES = 16 << 30  # far above any zoo model; a larger file is not one of its weights files


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


def save_safetensors(path: str | Path, tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str]) -> None:
    from safetensors.torch import save as st_save

    data = st_save({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, metadata=dict(metadata))
    atomic_write_bytes(path, data)


def read_safetensors(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file, after checking its header against the file size."""
    from safetensors.torch import load as st_load

    path = Path(path)
    try:
        raw = read_regular(path, MAX_WEIGHTS_BYTES, CheckpointError, "safetensors file")
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as err:
        raise CheckpointError(f"cannot read {path}: {err.strerror or err}") from None
    if len(raw) < 8:
        raise CheckpointError(f"{path} is not a safetensors file (only {len(raw)} bytes)")
    (header_len,) = struct.unpack("<Q", raw[:8])
    if header_len > min(MAX_HEADER_BYTES, len(raw) - 8):
        raise CheckpointError(
            f"{path} is truncated or corrupt: its header claims {header_len} bytes, the file has {len(raw) - 8}"
        )
    try:
        header = json.loads(raw[8 : 8 + header_len])
    except RecursionError:
        raise CheckpointError(f"{path} is corrupt: its header is nested too deeply; refused") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CheckpointError(f"{path} is corrupt: its header is not JSON") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path} is corrupt: its header is not a JSON object")
    data_len = len(raw) - 8 - header_len
    for name, info in header.items():
        if name == "__metadata__":
            continue
        offsets = info.get("data_offsets") if isinstance(info, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and 0 <= offsets[0] <= offsets[1] <= data_len):
            raise CheckpointError(f"{path} is truncated or corrupt: tensor {shown(name)} lies outside the file")
    try:
        tensors = st_load(raw)
    except Exception as err:  # safetensors raises its own error type for malformed files
        raise CheckpointError(f"{path} is corrupt: {err}") from None
    metadata = header.get("__metadata__") or {}
    return tensors, {str(k): str(v) for k, v in metadata.items()}
