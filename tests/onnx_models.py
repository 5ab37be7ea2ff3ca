"""Small models exported once per test session and shared by test_export.py and test_runtime.py.

``toy``: the toy-avb recipe's architecture (2x2 images, concat-MLP encoder, no moments), exported through the
``avb-zoo export`` command. ``mnist``: an MNIST-shaped AVB+AC model (noise-basis encoder on a batch-normed
ELU conv trunk, transposed-conv softplus Bernoulli decoder), exported from training mode to check that the
exporter uses eval mode.
Weights are random but far from their near-zero initial heads, so the graphs compute non-trivial functions.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

MNIST_CONFIG = {
    "method": "avb-ac",
    "x_dim": 784,
    "latent_dim": 8,
    "image_shape": [1, 28, 28],
    "encoder": {
        "name": "noise-basis",
        "eps_dim": 8,
        "n_basis": 4,
        "channels": [8, 16],
        "strides": [2, 2],
        "batch_norm": [True, True],
        "hidden": [64],
        "basis_hidden": [32],
    },
    "decoder": {
        "name": "bernoulli",
        "hidden": [64],
        "start_shape": [16, 7, 7],
        "channels": [8],
        "strides": [2, 2],
        "act": "softplus",
    },
    "adversary": {"name": "inner-product", "hidden": [32], "feature_dim": 16},
}

_CACHE: dict[str, Path] = {}


def build(name: str):
    """A seeded model with perturbed weights and batch-norm statistics (untrained, but not near zero)."""
    from avb_zoo.catalogue.recipes import find_recipe
    from avb_zoo.modelling.model import AVBModel

    configs = {"toy": "toy-avb", "eight-schools": "eight-schools-avb-ac-v2"}
    config = find_recipe(configs[name]).model if name in configs else MNIST_CONFIG
    gen = torch.Generator().manual_seed(1234)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = AVBModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(0.3 * torch.randn(m.num_features, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=gen))
        if name == "mnist":
            model.encoder.scales.bias.add_(5.0)  # basis coefficients a_i near 1, so the noise matters
    return model


def exported(factory: pytest.TempPathFactory, name: str) -> Path:
    """The folder of model ``name`` (config.json, model.safetensors, onnx/), exported once per session."""
    if name in _CACHE:
        return _CACHE[name]
    from avb_zoo.modelling.weights import save

    folder = factory.mktemp(f"onnx-{name}")
    model = build(name)
    save(model, folder, {"recipe_id": f"test-{name}-v2"})
    if name in ("toy", "eight-schools"):
        from avb_zoo.cli import main
        from click.testing import CliRunner

        result = CliRunner().invoke(main, ["export", str(folder), "--seed", "0"])
        assert result.exit_code == 0, result.output
    else:
        from avb_zoo.export import export_model

        export_model(model.train(), folder, model_id="test-mnist-v2", seed=0)
    _CACHE[name] = folder
    return folder
