"""Encode and sample with onnxruntime alone (numpy, onnxruntime and Pillow; never torch).

``Encoder(folder).encode(x, seed=0)``, ``Sampler(folder).sample(64, seed=0)`` and, for a model with no
input x, ``PosteriorSampler(folder).draw(1000, seed=0)`` run the graphs that
``avb-zoo export`` writes to a model folder's ``onnx/``; each graph is checked against ``config.json``.
"""

from __future__ import annotations

from avb_zoo.util.threads import OtherLoad

# Other programs' load, measured from here: a session's automatic thread count reads it (runtime.session), and
# the imports below, numpy's and onnxruntime's, fill most of the measuring window.
LOAD = OtherLoad()

from avb_zoo.runtime.inputs import as_model_input, load_images  # noqa: E402
from avb_zoo.runtime.locate import resolve_model_dir  # noqa: E402
from avb_zoo.runtime.models import Encoder, PosteriorSampler, Sampler, open_sampler  # noqa: E402

__all__ = [
    "Encoder",
    "PosteriorSampler",
    "Sampler",
    "open_sampler",
    "as_model_input",
    "load_images",
    "resolve_model_dir",
]
