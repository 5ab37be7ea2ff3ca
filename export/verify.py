"""Parity of an exported graph with its torch module, through onnxruntime, on fresh random inputs.

The check runs the graph as users will: onnxruntime on the CPU, with the runtime's own session options.
Inputs are drawn as the graph's users draw them (images uniform in [0, 1], noise and latents N(0, 1)).
"""

from __future__ import annotations

import numpy as np
import torch

from avb_zoo.runtime.ort import ort
from avb_zoo.runtime.session import session_options
from avb_zoo.runtime.verify import graph_error

from .graphs import GraphSpec

DEFAULT_ATOL = 1e-4  # the largest graph_error (absolute up to 1, relative above) allowed between onnxruntime and torch
DEFAULT_BATCHES = (1, 2, 17, 257)  # 1, small, odd, and an odd size above 256


def check_parity(
    data: bytes,
    spec: GraphSpec,
    batch_sizes: tuple[int, ...],
    generator: torch.Generator,
    threads: int | None = None,
) -> list[dict[str, object]]:
    """For each batch size, per output: the max abs difference (recorded) and the :func:`graph_error` the check
    passes on (inf where shapes differ or values are not finite); ``threads`` sets onnxruntime's intra-op pool
    (default: onnxruntime's)."""
    session = ort.InferenceSession(data, session_options(threads), providers=["CPUExecutionProvider"])
    checks: list[dict[str, object]] = []
    for batch in batch_sizes:
        inputs = spec.example(batch, generator)
        with torch.no_grad():
            expected = spec.reference(*inputs)
        expected = expected if isinstance(expected, tuple) else (expected,)
        got = session.run(None, {name: t.numpy() for name, t in zip(spec.inputs, inputs, strict=True)})
        diffs: dict[str, float] = {}
        errors: dict[str, float] = {}
        for name, ref, out in zip(spec.outputs, expected, got, strict=True):
            ref = ref.numpy()
            errors[name] = graph_error(out, ref)
            diffs[name] = float(np.abs(out.astype(np.float64) - ref).max()) if errors[name] < np.inf else float("inf")
        checks.append({"batch": batch, "max_abs_diff": diffs, "max_error": errors})
    return checks
