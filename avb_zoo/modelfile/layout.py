"""What an exported model folder looks like, shared by the exporter and the torch-free runtime.

One source of truth for the graph file names, the ``metadata_props`` keys written into every graph, the
architecture fingerprint that ties a graph to ``config.json``, and the image layout. Pure Python: importing
it costs nothing and pulls in neither torch nor numpy.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

from avb_zoo.modelfile.config_file import CONFIG_FILE  # noqa: F401  (re-exported: the folder layout lives here)

ONNX_DIR = "onnx"
REPORT_FILE = "verification.json"

# graph name -> (input names, output names); every input has a dynamic batch dimension first
GRAPHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "encoder": (("x", "eps"), ("z",)),
    "moments": (("x",), ("mean", "var")),
    "decoder": (("z",), ("logits",)),
    "sampler": (("z",), ("probs",)),
    "posterior": (("eps",), ("z",)),  # a posterior sampler (x_dim 0): noise -> parameter draws
}

META_PREFIX = "avb_zoo."
ARCHITECTURE_FIELDS = ("method", "x_dim", "latent_dim", "image_shape", "encoder", "decoder")

X_CONVENTION = "float32 [B, x_dim], pixel intensities in [0, 1], each image flattened row-major from (C, H, W)"
EPS_CONVENTION = "float32 [B, noise_dim], i.i.d. N(0, 1) encoder noise drawn by the caller"
Z_CONVENTION = "float32 [B, latent_dim], a latent code; z ~ N(0, I) samples the prior"


def graph_file(name: str) -> str:
    """Path of a graph inside a model folder, e.g. ``onnx/encoder.onnx``."""
    return f"{ONNX_DIR}/{name}.onnx"


REPORT = f"{ONNX_DIR}/{REPORT_FILE}"  # the export's verification report, by path in the folder
INT8_SAMPLER = graph_file("sampler-int8")  # optional int8 sampler ...
INT8_REPORT = f"{ONNX_DIR}/sampler-int8.json"  # ... with its measured error


def architecture_fingerprint(config: Mapping[str, Any]) -> str:
    """sha256 of the fields that fix the function a graph computes; other config fields may change freely."""
    fields = {key: config.get(key) for key in ARCHITECTURE_FIELDS}
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def image_shape_of(config: Mapping[str, Any]) -> tuple[int, int, int]:
    """(C, H, W) of one example: ``image_shape`` when the config has it, else a square or a single row."""
    shape = config.get("image_shape")
    if shape is not None:
        c, h, w = (int(s) for s in shape)
        return c, h, w
    x_dim = int(config["x_dim"])
    side = math.isqrt(x_dim)
    return (1, side, side) if side * side == x_dim else (1, 1, x_dim)
