"""From what the user typed (ID_OR_DIR) to a model folder, and that folder's config.json, without torch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from avb_zoo.errors import CheckpointError, ConfigError, shown
from avb_zoo.modelfile.config_file import FORMAT_VERSION, read_config_json
from avb_zoo.runtime.conventions import CONFIG_FILE
from avb_zoo.runtime.limits import check_dim
from avb_zoo.util.fileio import is_folder, is_present


def resolve_model_dir(id_or_dir: str | Path) -> Path:
    """The model folder that ``id_or_dir`` names (see ``resolve_model``)."""
    return resolve_model(id_or_dir)[0]


def resolve_model(id_or_dir: str | Path) -> tuple[Path, Mapping[str, str] | None]:
    """The model folder that ``id_or_dir`` names: a folder holding config.json, or a model id.

    This is the one place that maps ID_OR_DIR to a folder. Ids are resolved by ``avb_zoo.hub.client.resolve_checked``
    (the sha256-checked Hub cache or the copy the package ships) where this installation has it; the second
    item is then the sha256 of every file that was checked, the only files of that folder that may be opened
    (None for the user's own folder).
    """
    path = Path(id_or_dir).expanduser()
    if is_folder(path):
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is not a model folder: it holds no {CONFIG_FILE}")
        return path, None
    if is_present(path):
        raise CheckpointError(f"{path} is a file; expected a model folder holding {CONFIG_FILE} and onnx/")
    try:
        from avb_zoo.hub.client import resolve_checked
    except ImportError:
        raise CheckpointError(f"{shown(id_or_dir)} is not a model folder (no such directory)") from None
    folder, hashes = resolve_checked(id_or_dir)
    return Path(folder), hashes


def _int_at_least(config: dict[str, Any], key: str, source: Path, low: int) -> int:
    value = config.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        what = "a positive integer" if low == 1 else f"an integer >= {low}"
        raise ConfigError(f"{source}: {key} must be {what}, got {shown(value)}")
    return value


def read_model_config(folder: Path) -> dict[str, Any]:
    """config.json of a model folder, with the fields the runtime relies on checked."""
    source = folder / CONFIG_FILE
    config = read_config_json(folder)
    version = config.get("format_version", FORMAT_VERSION)
    if type(version) is not int or not 1 <= version <= FORMAT_VERSION:
        raise ConfigError(f"{source} has format_version {shown(version)}; this avb-zoo reads 1 to {FORMAT_VERSION}")
    # x_dim 0: a posterior sampler, which takes no x
    x_dim = check_dim(_int_at_least(config, "x_dim", source, 0), "x_dim", source)
    check_dim(_int_at_least(config, "latent_dim", source, 1), "latent_dim", source)
    shape = config.get("image_shape")
    if shape is not None:
        ok = isinstance(shape, list) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)
        if not ok or math.prod(shape) != x_dim:
            raise ConfigError(f"{source}: image_shape {shown(shape)} is not three sizes holding x_dim = {x_dim} values")
    return config
