"""ONNX export of encoders, decoders and samplers (``avb_zoo.export``), with a parity check against PyTorch.

``export_folder(folder, out)`` writes ``onnx/encoder.onnx`` (x, eps -> z), ``onnx/moments.onnx``
(x -> mean, var; AC and Gaussian encoders), ``onnx/decoder.onnx`` (z -> logits), ``onnx/sampler.onnx``
(z -> pixel probabilities) and ``onnx/verification.json``. Noise enters every graph as an input.
"""

from __future__ import annotations

from .exporter import export_folder, export_model
from .graphs import basis_moments, graph_specs

__all__ = ["basis_moments", "export_folder", "export_model", "graph_specs"]
