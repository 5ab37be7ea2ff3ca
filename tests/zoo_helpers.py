"""Small model configurations and model folders shared by the registry, hub and loading tests."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import save

# A toy-sized VAE: builds in milliseconds.
TINY = {
    "method": "vae",
    "x_dim": 4,
    "latent_dim": 2,
    "encoder": {"name": "gaussian", "hidden": [8]},
    "decoder": {"name": "bernoulli", "hidden": [8]},
    "data": {"name": "toy"},
}
# An MNIST-shaped VAE whose model.safetensors is about 19 MB: over the Hub's 10 MB LFS threshold.
BIG = {
    "method": "vae",
    "x_dim": 784,
    "latent_dim": 8,
    "image_shape": [1, 28, 28],
    "encoder": {"name": "gaussian", "hidden": [1200, 1200]},
    "decoder": {"name": "bernoulli", "hidden": [1200, 1200]},
    "data": {"name": "mnist"},
}
SMALL = {**BIG, "encoder": {"name": "gaussian", "hidden": [16]}, "decoder": {"name": "bernoulli", "hidden": [16]}}


def model_folder(folder: Path, config: dict, seed: int = 0, metrics: dict | None = None) -> Path:
    """A saved model (config.json + model.safetensors, optionally metrics.json) with seeded initial weights."""
    torch.manual_seed(seed)
    save(AVBModel({**config, "id": config.get("id", "test/model-v1")}), folder)
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder
