"""Encode and sample with onnxruntime alone (numpy, onnxruntime and Pillow; never torch).

``Encoder(folder).encode(x, seed=0)`` and ``Sampler(folder).sample(64, seed=0)`` run the graphs that
``avb-zoo export`` writes to a model folder's ``onnx/``; each graph is checked against ``config.json``.
"""

from __future__ import annotations

from avb_zoo.runtime.inputs import as_model_input, load_images
from avb_zoo.runtime.locate import resolve_model_dir
from avb_zoo.runtime.models import Encoder, Sampler

__all__ = ["Encoder", "Sampler", "as_model_input", "load_images", "resolve_model_dir"]
