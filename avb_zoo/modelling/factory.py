"""Building models by name: ``avb_zoo.make`` (the registry's spec and its published weights) and
``avb_zoo.load`` (whatever folder, catalogue id or Hub repo names a trained model).

Kept apart from the registry (which only names models) and the Hub (which only fetches files), as timm keeps
``_registry``, ``_hub`` and ``_factory`` apart. The id (plus the Hub revision) alone fixes architecture and
weights: ``make``'s keyword arguments may only change where and how the model runs. A Hub repo
(``hf-hub:ORG/NAME[@REV]``) builds from its own config.json. Every name is resolved once, by
``avb_zoo.hub.resolve``, and every folder is read by ``weights.build_from_folder``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from avb_zoo.catalogue.reference import HubRef, parse_reference
from avb_zoo.catalogue.registry import ModelSpec, load_entry_point, spec
from avb_zoo.compute.device import resolve_device
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.errors import AVBZooError, CheckpointError, ConfigError, RegistrationError, shown
from avb_zoo.hub.resolve import resolve
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import ADVERSARY_FILE, WEIGHTS_FILE, build_from_folder, read_config, read_weights

if TYPE_CHECKING:
    from torch import nn

__all__ = ["RUNTIME_KWARGS", "avb_model", "load", "load_weights", "make"]

# make()'s keyword arguments: where and how the model runs, or where its files come from; never what it is.
RUNTIME_KWARGS = ("device", "dtype", "pretrained", "revision", "cache_dir", "offline")


def avb_model(**config: Any) -> nn.Module:
    """The registry's default entry point: an AVBModel from its configuration (the content of config.json)."""
    return AVBModel(config)


def _check_runtime_kwargs(model_id: str, kwargs: dict[str, Any]) -> None:
    extra = sorted(set(kwargs) - set(RUNTIME_KWARGS))
    if extra:
        raise ConfigError(
            f"make({shown(model_id)}) got {', '.join(extra)}: the id and its revision fix the architecture and "
            "weights, "
            f"so make takes only {', '.join(RUNTIME_KWARGS)} (train a new model id to change the rest)"
        )


def _dtype(value: Any) -> Any:
    if value is None or isinstance(value, torch.dtype):
        return value
    found = getattr(torch, str(value), None)
    if not isinstance(found, torch.dtype) or not found.is_floating_point:
        raise ConfigError(f"dtype {shown(value)} is not a torch floating-point dtype (e.g. float32, float64)")
    return found


def _place(model: nn.Module, kwargs: dict[str, Any]) -> nn.Module:
    """The model on the asked device and dtype, in eval mode."""
    device, dtype = kwargs.get("device"), _dtype(kwargs.get("dtype"))
    if device is not None:
        device = resolve_device(str(device))
    if device is not None or dtype is not None:
        model.to(device=device, dtype=dtype)
    return model.eval()


def load_weights(model: nn.Module, folder: Path, model_spec: ModelSpec) -> None:
    """Copy the weights of a model folder into ``model``, strictly (every mismatch is named)."""
    if isinstance(model, AVBModel):
        stored = read_config(folder)
        if stored != model.config:
            differ = sorted(k for k in set(stored) | set(model.config) if stored.get(k) != model.config.get(k))
            raise ConfigError(
                f"{folder / 'config.json'} does not describe {model_spec.id} (fields {differ} differ from the registry)"
            )
        # a catalogue with hashes vouches only for the files it lists: an extra file in the cache is not read
        listed = not model_spec.files or ADVERSARY_FILE in model_spec.files
        read_weights(model, folder, with_adversary=listed)
        return
    tensors, _ = read_safetensors(folder / WEIGHTS_FILE)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"{folder / WEIGHTS_FILE} does not fit {model_spec.id}: {err}") from None


def make(model_id: str | ModelSpec, **kwargs: Any) -> nn.Module:
    """The torch model of ``model_id`` with its published weights, in eval mode.

    Keyword arguments: ``device``, ``dtype`` (where and how it runs), ``pretrained=False`` (fresh
    initialisation instead of the weights), ``revision``, ``cache_dir``, ``offline`` (where the files come from).
    Anything else raises: it would change what the id means.
    """
    ref = model_id if isinstance(model_id, ModelSpec) else parse_reference(model_id)
    if isinstance(ref, HubRef):
        return _make_from_repo(ref, kwargs)
    model_spec = spec(ref)
    _check_runtime_kwargs(model_spec.id, kwargs)
    _dtype(kwargs.get("dtype"))  # a bad dtype is named before anything is built or fetched
    creator = load_entry_point(model_spec.entry_point)
    try:
        model = creator(**copy.deepcopy(model_spec.kwargs))
    except AVBZooError:
        raise
    except Exception as err:  # a plugin's constructor: name the id
        raise RegistrationError(f"{model_spec.id}: its entry point failed: {type(err).__name__}: {err}") from err
    if kwargs.get("pretrained", True):
        if not model_spec.has_weights:
            raise CheckpointError(
                f"{model_spec.id} has no published weights (no [hub] entry); train it with `avb-zoo train "
                f"{model_spec.id}`, or pass pretrained=False for a freshly initialised model"
            )
        pulled = resolve(
            model_spec,
            revision=kwargs.get("revision"),
            cache_dir=kwargs.get("cache_dir"),
            offline=bool(kwargs.get("offline", False)),
        )
        load_weights(model, pulled.folder, model_spec)
        model.source = model_spec.id  # type: ignore[assignment]  (AVBModel says where it came from)
    return _place(model, kwargs)


def _make_from_repo(ref: HubRef, kwargs: dict[str, Any]) -> nn.Module:
    """A Hub repo outside the catalogue: its own config.json fixes the architecture, its weights are verified."""
    _check_runtime_kwargs(ref.id, kwargs)
    pulled = resolve(
        ref, revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"), offline=bool(kwargs.get("offline"))
    )
    if not kwargs.get("pretrained", True):
        return _place(AVBModel(read_config(pulled.folder)), kwargs)
    model = build_from_folder(AVBModel, pulled.folder, hashes=pulled.hashes, source=f"{ref.id}@{pulled.commit}")
    return _place(model, kwargs)


def load(
    path: str | Path,
    device: str | torch.device | None = None,
    with_adversary: bool = True,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> AVBModel:
    """The model a folder, a catalogue id or a Hub repo (``hf-hub:ORG/NAME[@REV]``) names, in eval mode.

    It takes what ``runtime.Sampler`` takes. For an id only files whose sha256 was checked are opened.
    Without adversary.safetensors (or with ``with_adversary=False``) the model's ``adversary`` is None: what
    needs it (AVB's ELBO estimate, going on training) says so.
    """
    pulled = resolve(path, revision=revision, cache_dir=cache_dir, offline=offline)
    source = str(pulled.folder) if pulled.source == "folder" else str(path)
    model = build_from_folder(
        AVBModel, pulled.folder, hashes=pulled.hashes, with_adversary=with_adversary, source=source
    )
    if device is not None:
        model.to(device)
    return model
