"""The training state: every tensor needed to continue a run exactly, in one atomically written file.

``training_state.safetensors`` holds ``model.*`` (encoder, decoder, adversary, buffers included) and
``optim.<name>.<index>.<field>`` (Adam's moments and step counts); its metadata holds the step, the seed,
the recipe id and the optimisers' hyper-parameters as JSON. No generator state is needed: every random draw
is keyed by (seed, step). One file written by one rename means a killed run never leaves a state whose parts
disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from avb_zoo.compute.tensor_files import read_safetensors, save_safetensors
from avb_zoo.errors import CheckpointError
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import load_state_strict, model_tensors

STATE_FILE = "training_state.safetensors"


@dataclass(frozen=True)
class RunInfo:
    """What identifies a run: resuming with other values would not continue the same run."""

    recipe_id: str
    seed: int
    batch_size: int  # the global batch, whatever the number of processes
    step: int
    dtype: str = "float32"
    launch_id: str = ""  # torchrun's rendezvous id of the launch that wrote it ("" outside torchrun)
    noise: str = "host"  # the noise stream: host (keyed CPU generators) or device (keyed Philox)
    precision: str = "float32"  # the forward passes' matrix products: float32 or bf16


def save_training_state(
    folder: Path, model: AVBModel, optimizers: dict[str, torch.optim.Optimizer], info: RunInfo
) -> None:
    tensors = {f"model.{k}": v for k, v in model_tensors(model, ("encoder", "decoder", "adversary")).items()}
    groups = {}
    for name, opt in optimizers.items():
        state = opt.state_dict()
        for index, fields in state["state"].items():
            for field, value in fields.items():
                tensors[f"optim.{name}.{index}.{field}"] = torch.as_tensor(value)
        groups[name] = state["param_groups"]
    metadata = {
        "recipe_id": info.recipe_id,
        "seed": str(info.seed),
        "batch_size": str(info.batch_size),
        "step": str(info.step),
        "dtype": info.dtype,
        "launch_id": info.launch_id,
        "noise": info.noise,
        "precision": info.precision,
        "param_groups": json.dumps(groups),
    }
    save_safetensors(folder / STATE_FILE, tensors, metadata)


def read_run_info(folder: Path) -> RunInfo:
    _, meta = read_safetensors(folder / STATE_FILE)
    return _info(meta, folder)


def _info(meta: dict[str, str], folder: Path) -> RunInfo:
    try:
        return RunInfo(
            meta["recipe_id"],
            int(meta["seed"]),
            int(meta["batch_size"]),
            int(meta["step"]),
            meta.get("dtype", "float32"),
            meta.get("launch_id", ""),
            meta.get("noise", "host"),
            meta.get("precision", "float32"),
        )
    except (KeyError, ValueError):
        raise CheckpointError(f"{folder / STATE_FILE} lacks the run's step, seed or recipe id") from None


def load_training_state(folder: Path, model: AVBModel, optimizers: dict[str, torch.optim.Optimizer]) -> RunInfo:
    """Restore model and optimisers in place; returns the saved run info."""
    tensors, meta = read_safetensors(folder / STATE_FILE)
    info = _info(meta, folder)
    model_part = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    load_state_strict(model, model_part, ("encoder", "decoder", "adversary"), str(folder / STATE_FILE))
    groups = json.loads(meta.get("param_groups", "{}"))
    for name, opt in optimizers.items():
        if name not in groups:
            raise CheckpointError(f"{folder / STATE_FILE} has no state for the {name} optimiser")
        state: dict[int, dict[str, torch.Tensor]] = {}
        prefix = f"optim.{name}."
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[field] = value
        for group in groups[name]:
            for key in ("betas",):
                if key in group:
                    group[key] = tuple(group[key])
        try:
            opt.load_state_dict({"state": state, "param_groups": groups[name]})
        except (ValueError, KeyError) as err:
            raise CheckpointError(f"{folder / STATE_FILE}: optimiser state does not fit this model: {err}") from None
    return info
