"""Reading a model folder's ``config.json`` without torch: size limit, JSON syntax, a JSON object.

Shared by the torch loader (which then validates every field) and the onnxruntime wrappers (which must not
import torch), so a hostile or broken file gets the same message whichever path reads it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from avb_zoo.errors import CheckpointError, ConfigError, shown
from avb_zoo.util.bounded import loads_json, read_regular

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1  # the config.json format this avb-zoo reads and writes
MAX_CONFIG_BYTES = 1 << 20  # a model configuration is a few hundred bytes; refuse to parse a huge file
# Every top-level field a model configuration may have: a mistyped one (image_shap) would otherwise be ignored
# and the model built without it.
CONFIG_KEYS = (
    "format_version",
    "id",
    "method",
    "x_dim",
    "latent_dim",
    "image_shape",
    "encoder",
    "decoder",
    "adversary",
    "data",
)


def suggestion(key: str, known: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when ``key`` is close to one of ``known``, else an empty string."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_keys(config: Mapping[str, Any], where: object, known: Iterable[str] = CONFIG_KEYS) -> None:
    """Refuse a field ``known`` does not name, suggesting the close one: a typo must not pass unnoticed."""
    known = tuple(known)
    for key in config:
        if key not in known:
            text = key if isinstance(key, str) else str(key)
            raise ConfigError(
                f"{where}: unknown field {shown(text)}{suggestion(text, known)}; a model config has {list(known)}"
            )


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
    check_keys(config, path)
    return config
