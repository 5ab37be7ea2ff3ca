"""Safetensors files, written atomically and read only after their header is checked against the file size.

Weights, checkpoints and evaluation journals all go through these two functions; nothing is ever unpickled.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path

import torch

from avb_zoo.errors import CheckpointError, shown
from avb_zoo.util.bounded import read_regular
from avb_zoo.util.fileio import atomic_write_bytes

MAX_HEADER_BYTES = 100 * 1024 * 1024  # the safetensors format's own limit
MAX_WEIGHTS_BYTES = 16 << 30  # far above any zoo model; a larger file is not one of its weights files


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
