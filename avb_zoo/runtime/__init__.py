"""Encode and sample with onnxruntime alone (numpy, onnxruntime and Pillow; never torch).

``Encoder(folder).encode(x, seed=0)``, ``Sampler(folder).sample(64, seed=0)`` and, for a model with no
input x, ``PosteriorSampler(folder).draw(1000, seed=0)`` run the graphs that
``avb-zoo export`` writes to a model folder's ``onnx/``; each graph is checked against ``config.json``.
"""

from __future__ import annotations

from avb_zoo.runtime.load import LOAD  # first: the load is measured while the imports below run

# isort: split
from avb_zoo.runtime.inputs import as_model_input, load_images
from avb_zoo.runtime.locate import resolve_model_dir
from avb_zoo.runtime.models import Encoder, PosteriorSampler, Sampler, open_sampler

__all__ = [
    "LOAD",
    "Encoder",
    "PosteriorSampler",
    "Sampler",
    "open_sampler",
    "as_model_input",
    "load_images",
    "resolve_model_dir",
]
