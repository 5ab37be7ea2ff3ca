"""From what the user typed (ID_OR_DIR) to a model folder and its config.json, read once, without torch.

The name goes through the one resolver (``avb_zoo.hub.resolve``); the folder's config.json is read and checked
once here and travels with the folder, so the runtime's classes, ``verify`` and the browser page never read it
again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avb_zoo.hub.resolve import resolve
from avb_zoo.modelfile.config_file import read_model_config

__all__ = ["ModelFolder", "open_model_folder", "read_model_config", "resolve_model_dir"]


@dataclass(frozen=True)
class ModelFolder:
    """A resolved model folder, the sha256 of the files that may be opened in it (None: the user's own folder,
    trusted as it is) and its checked config.json."""

    folder: Path
    hashes: Mapping[str, str] | None
    config: dict[str, Any]


def open_model_folder(model: str | Path | ModelFolder) -> ModelFolder:
    """The folder ``model`` names (a folder, a catalogue id or a Hub repo), with its config read once."""
    if isinstance(model, ModelFolder):
        return model
    pulled = resolve(model)
    return ModelFolder(pulled.folder, pulled.hashes, read_model_config(pulled.folder))


def resolve_model_dir(id_or_dir: str | Path) -> Path:
    """The model folder that ``id_or_dir`` names (see ``avb_zoo.hub.resolve``)."""
    return resolve(id_or_dir).folder
