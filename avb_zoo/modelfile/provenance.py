"""How a model was trained (command, device, time), kept beside the weights for the model card.

``avb-zoo train`` writes ``training.json`` into the run folder when training ends; ``push`` uploads it and the
card shows it, so a published model says exactly how it was made. Torch-free.
"""

from __future__ import annotations

import platform
import shlex
from pathlib import Path
from typing import Any

from avb_zoo.errors import ConfigError
from avb_zoo.util.bounded import loads_json, read_regular
from avb_zoo.util.fileio import atomic_write_json

TRAINING_FILE = "training.json"
MAX_BYTES = 1 << 16


def write_training_record(out: Path, argv: list[str], device: str, seconds: float, steps: int, **extra: Any) -> Path:
    """The command that trained the model in ``out``, where it ran and how long it took."""
    record = {
        "command": shlex.join(["avb-zoo", "train", *argv]),
        "device": device,
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
        "seconds": round(float(seconds), 1),
        "steps": int(steps),
        **extra,
    }
    atomic_write_json(Path(out) / TRAINING_FILE, record)
    return Path(out) / TRAINING_FILE


def read_training_record(folder: Path) -> dict[str, Any]:
    """training.json of a model folder ({} when absent); a file that is not a JSON object is an error."""
    path = Path(folder) / TRAINING_FILE
    if not path.is_file():
        return {}
    data = loads_json(read_regular(path, MAX_BYTES, ConfigError, TRAINING_FILE), path, ConfigError)
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    return data
