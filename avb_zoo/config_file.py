"""Reading a model folder's ``config.json`` without torch: size limit, JSON syntax, a JSON object.

Shared by the torch loader (which then validates every field) and the onnxruntime wrappers (which must not
import torch), so a hostile or broken file gets the same message whichever path reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from avb_zoo.errors import CheckpointError, ConfigError

CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 1 << 20  # a model configuration is a few hundred bytes; refuse to parse a huge file


def read_config_json(folder: str | Path) -> dict[str, Any]:
    """The JSON object in ``folder/config.json``; errors name the file and the problem."""
    path = Path(folder) / CONFIG_FILE
    try:
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is {size:,} bytes; a model config.json is at most {MAX_CONFIG_BYTES:,}")
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder} holds no {CONFIG_FILE}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigError(f"{path} is not valid JSON: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(config).__name__}")
    return config
