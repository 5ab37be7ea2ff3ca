"""Reading a model folder's ``config.json`` without torch: size limit, JSON syntax, a JSON object.

Shared by the torch loader (which then validates every field) and the onnxruntime wrappers (which must not
import torch), so a hostile or broken file gets the same message whichever path reads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from avb_zoo.bounded import loads_json, read_regular
from avb_zoo.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 1 << 20  # a model configuration is a few hundred bytes; refuse to parse a huge file


def read_config_json(folder: str | Path) -> dict[str, Any]:
    """The JSON object in ``folder/config.json``; errors name the file and the problem."""
    path = Path(folder) / CONFIG_FILE
    try:
        raw = read_regular(path, MAX_CONFIG_BYTES, ConfigError, "model config.json")
    except FileNotFoundError:
        raise CheckpointError(f"{folder} holds no {CONFIG_FILE}") from None
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    config = loads_json(raw, path, ConfigError)
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config
