"""Saving and loading a model folder: ``config.json``, ``model.safetensors`` and ``adversary.safetensors``.

``model.safetensors`` holds ``encoder.*`` and ``decoder.*`` (what users of a trained model need); the
adversary, needed only to go on training or for AVB's ELBO estimate, has its own file. A model loaded
without that file (absent, or ``with_adversary=False``) has ``adversary = None``, never an untrained one.
Loading is strict: a missing, unexpected or mis-shaped tensor is named.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch

from avb_zoo.compute.tensor_files import read_safetensors, save_safetensors
from avb_zoo.errors import CheckpointError, ConfigError
from avb_zoo.modelfile.config_file import CONFIG_FILE, FORMAT_VERSION, check_format_version, read_config_json
from avb_zoo.modelfile.model_config import validate_config
from avb_zoo.util.fileio import atomic_write_json

if TYPE_CHECKING:
    from avb_zoo.modelling.model import AVBModel

M = TypeVar("M", bound="AVBModel")

WEIGHTS_FILE = "model.safetensors"
ADVERSARY_FILE = "adversary.safetensors"
TRAINING_DTYPES = (torch.float32, torch.float64)  # what a floating-point tensor of a saved model may be stored as


def model_tensors(model: AVBModel, groups: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Parameters and buffers of the named parts, keyed ``part.name``."""
    parts = model.state_groups()
    return {f"{g}.{k}": v for g in groups if g in parts for k, v in parts[g].state_dict().items()}


def save(model: AVBModel, folder: str | Path, metadata: dict[str, str] | None = None) -> Path:
    """Write config.json, model.safetensors and (for AVB) adversary.safetensors, each atomically."""
    folder = Path(folder)
    meta = {"format_version": str(model.config["format_version"]), **(metadata or {})}
    save_safetensors(folder / WEIGHTS_FILE, model_tensors(model, ("encoder", "decoder")), meta)
    if model.adversary is not None:
        save_safetensors(folder / ADVERSARY_FILE, model_tensors(model, ("adversary",)), meta)
    atomic_write_json(folder / CONFIG_FILE, model.config)
    return folder


def read_config(folder: str | Path) -> dict[str, Any]:
    """config.json, checked: its size, JSON syntax, format version and every field (errors name the file)."""
    path = Path(folder) / CONFIG_FILE
    config = read_config_json(folder)
    check_format_version(config.get("format_version", FORMAT_VERSION), path)
    try:
        return validate_config(config)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None


def check_values(tensors: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], source: str) -> None:
    """Each tensor in a dtype the model is trained in (float32 or float64 weights), and finite.

    A float16 or int64 copy would be cast silently on loading, and a NaN weight gives a model that loads,
    exports and publishes but computes nothing: both are refused, naming the tensor.
    """
    for name, want in expected.items():
        got = tensors[name]
        allowed = TRAINING_DTYPES if want.is_floating_point() else (want.dtype,)
        if got.dtype not in allowed:
            names = " or ".join(str(d).removeprefix("torch.") for d in allowed)
            raise CheckpointError(
                f"{source}: tensor {name} is stored as {str(got.dtype).removeprefix('torch.')}; "
                f"the model keeps it as {names}"
            )
        if got.is_floating_point() and not bool(torch.isfinite(got).all()):
            bad = int((~torch.isfinite(got)).sum())
            raise CheckpointError(f"{source}: tensor {name} holds {bad} NaN or infinite value(s); refused")


def load_state_strict(model: AVBModel, tensors: dict[str, torch.Tensor], groups: tuple[str, ...], source: str) -> None:
    """Copy ``tensors`` into the named parts; every mismatch is reported by name."""
    expected = model_tensors(model, groups)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    shapes = [
        f"{k} {tuple(tensors[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    if unexpected:
        problems.append(f"unexpected {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}")
    if shapes:
        problems.append(f"mis-shaped {shapes[:5]}")
    if problems:
        raise CheckpointError(f"{source} does not match config.json: " + "; ".join(problems))
    check_values(tensors, expected, source)
    parts = model.state_groups()
    for g in groups:
        if g in parts:
            prefix = f"{g}."
            sub = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            parts[g].load_state_dict(sub, strict=True)


def read_weights(model: AVBModel, folder: Path, with_adversary: bool = True) -> None:
    """Copy a model folder's weights into ``model``, strictly; without adversary.safetensors (or with
    ``with_adversary=False``) the model's adversary becomes None, never an untrained one."""
    tensors, _ = read_safetensors(folder / WEIGHTS_FILE)
    load_state_strict(model, tensors, ("encoder", "decoder"), str(folder / WEIGHTS_FILE))
    if model.adversary is not None:
        if with_adversary and (folder / ADVERSARY_FILE).exists():
            adv, _ = read_safetensors(folder / ADVERSARY_FILE)
            load_state_strict(model, adv, ("adversary",), str(folder / ADVERSARY_FILE))
        else:
            model.adversary = None


def build_from_folder(
    cls: type[M],
    folder: Path,
    *,
    hashes: dict[str, str] | None = None,
    with_adversary: bool = True,
    source: str | None = None,
) -> M:
    """``cls(config)`` with the folder's weights, in eval mode: the one way a model is read from a folder.

    ``hashes``: the files whose sha256 the resolver checked, the only ones that may be opened (None: the user's
    own folder); an adversary nobody vouched for is not read.
    """
    if hashes is not None and ADVERSARY_FILE not in hashes:
        with_adversary = False
    try:
        model = cls(read_config(folder))
    except ConfigError as err:
        message = str(err)
        raise ConfigError(message if CONFIG_FILE in message else f"{folder / CONFIG_FILE}: {message}") from None
    read_weights(model, folder, with_adversary)
    model.source = source if source is not None else str(folder)
    return model.eval()
