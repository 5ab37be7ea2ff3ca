"""avb-zoo: Adversarial Variational Bayes (with Adaptive Contrast) and the VAE baseline, as a model zoo.

Importing the package is cheap and does not import torch: the public functions are resolved lazily, so
torch-free parts (the onnxruntime wrappers, the command's fast paths) stay torch-free.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from avb_zoo._layout import checkout_root
from avb_zoo.errors import shown

__version__ = "0.1.0"

_root = checkout_root(Path(__file__).resolve().parent)
if _root is not None:  # source checkout: cli.py, export/ and models/ live beside the package
    __path__.append(str(_root))  # type: ignore[name-defined]  # noqa: F821

# public name -> module that defines it
_LAZY = {
    "train": "avb_zoo.training.trainer",
    "load": "avb_zoo.modelling.factory",
    "save": "avb_zoo.modelling.weights",
    "AVBModel": "avb_zoo.modelling.model",
    "build_model": "avb_zoo.modelling.model",
    "make": "avb_zoo.modelling.factory",
    "spec": "avb_zoo.catalogue.registry",
    "register": "avb_zoo.catalogue.registry",
    "pprint_registry": "avb_zoo.catalogue.registry",
    "pull": "avb_zoo.hub.resolve",
    "push": "avb_zoo.modelling.publishing",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'avb_zoo' has no attribute {shown(name)}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
