"""Reading a model folder's ``config.json`` without torch: size limit, JSON syntax, format version, sizes.

Shared by the torch loader (which then validates every field), the Hub resolver (which checks a repo's config
before fetching its weights) and the onnxruntime wrappers (which must not import torch), so a hostile or broken
file gets the same message whichever path reads it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from avb_zoo.errors import CheckpointError, ConfigError, shown
from avb_zoo.util.bounded import loads_json, read_regular

CONFIG_FILE = "config.json"
FORMAT_VERSION = 1  # the config.json format this avb-zoo reads and writes
MAX_DIM = 1 << 20  # the largest integer a config may hold: x_dim, latent_dim, noise_dim, each image side
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


def check_format_version(version: Any, where: object) -> int:
    """The config format a file declares, one this avb-zoo reads (1 to FORMAT_VERSION); errors name the file."""
    if type(version) is not int:
        raise ConfigError(f"{where}: format_version must be an integer, got {shown(version)}")
    if version > FORMAT_VERSION:
        raise ConfigError(
            f"{where} has format_version {version}, newer than this avb-zoo reads ({FORMAT_VERSION}): upgrade avb-zoo"
        )
    if version < 1:
        raise ConfigError(f"{where} has format_version {version}; this avb-zoo reads 1 to {FORMAT_VERSION}")
    return version


def check_dim(value: int, what: str, source: object) -> int:
    """A size read from a config or a graph, at most MAX_DIM."""
    if value > MAX_DIM:
        raise ConfigError(f"{source}: {what} = {value:,} is larger than the runtime allows ({MAX_DIM:,})")
    return value


def _int_at_least(config: Mapping[str, Any], key: str, source: Path, low: int) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ConfigError(f"{source}: {key} must be {what}, got {shown(value)}")
    return value


def read_model_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a model folder with the fields every reader relies on checked: the format version, the
    sizes (x_dim 0 is a posterior sampler, which takes no x) and the image layout."""
    source = Path(folder) / CONFIG_FILE
    config = read_config_json(folder)
    check_format_version(config.get("format_version", FORMAT_VERSION), source)
    x_dim = check_dim(_int_at_least(config, "x_dim", source, 0), "x_dim", source)
    check_dim(_int_at_least(config, "latent_dim", source, 1), "latent_dim", source)
    shape = config.get("image_shape")
    if shape is not None:
        ok = isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
        if not ok or math.prod(shape) != x_dim:
            raise ConfigError(f"{source}: image_shape {shown(shape)} is not three sizes holding x_dim = {x_dim} values")
    return config
