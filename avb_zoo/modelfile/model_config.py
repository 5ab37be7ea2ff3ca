"""A model configuration's structure and value checks, without torch.

The catalogue, the registry and the Hub resolver check configurations (including hostile ones from the Hub)
before anything is built; keeping the check free of torch lets resolving a model id stay torch-free.
The per-component checks that need the network classes stay in ``avb_zoo.modelling.model``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from avb_zoo.errors import ConfigError, shown
from avb_zoo.modelfile.config_file import FORMAT_VERSION, MAX_DIM, check_format_version, check_keys

METHODS = ("avb", "avb-ac", "vae")
MAX_LIST = 64


def _check_value(where: str, value: Any) -> None:
    """Only JSON scalars and short lists of them, integers in a sane range."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not 0 <= value <= MAX_DIM:
            raise ConfigError(f"{where} = {value} is out of range (0 to {MAX_DIM})")
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"{where} = {value} is not a finite number")
        return
    if isinstance(value, list | tuple):
        if len(value) > MAX_LIST:
            raise ConfigError(f"{where} has {len(value)} entries (at most {MAX_LIST})")
        for i, item in enumerate(value):
            if isinstance(item, list | tuple | dict):
                raise ConfigError(f"{where}[{i}] must be a number, string or boolean")
            _check_value(f"{where}[{i}]", item)
        return
    raise ConfigError(f"{where} has unsupported type {type(value).__name__}")


def validate_config(config: Any) -> dict[str, Any]:
    """Check a configuration's structure and types; returns a normalised deep copy."""
    if not isinstance(config, Mapping):
        raise ConfigError(f"a model configuration must be a JSON object, got {type(config).__name__}")
    check_keys(config, "the model configuration")
    cfg = copy.deepcopy(dict(config))
    check_format_version(cfg.get("format_version", FORMAT_VERSION), "the model configuration")
    cfg["format_version"] = FORMAT_VERSION
    if cfg.get("method") not in METHODS:
        raise ConfigError(f"method = {shown(cfg.get('method'))}; choose one of {list(METHODS)}")
    for key in ("latent_dim", "x_dim"):
        value = cfg.get(key)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key} must be an integer, got {shown(value)}")
        _check_value(key, value)
    if cfg["latent_dim"] < 1:
        raise ConfigError("latent_dim must be at least 1")
    shape = cfg.get("image_shape")
    if shape is not None:
        if not (isinstance(shape, list | tuple) and len(shape) == 3 and all(isinstance(s, int) for s in shape)):
            raise ConfigError(f"image_shape must be [channels, height, width], got {shown(shape)}")
        _check_value("image_shape", shape)
        if math.prod(shape) != cfg["x_dim"]:
            raise ConfigError(f"image_shape {list(shape)} does not hold x_dim = {cfg['x_dim']} values")
        cfg["image_shape"] = list(shape)
    needs_adversary = cfg["method"] != "vae"
    if needs_adversary and not cfg.get("adversary"):
        raise ConfigError(f"method {shown(cfg['method'])} needs an adversary")
    if not needs_adversary:
        cfg["adversary"] = None
    data = cfg.get("data", {})
    if not isinstance(data, Mapping):
        raise ConfigError("data must be a table")
    return cfg
