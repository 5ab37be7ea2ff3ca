"""An optional int8 sampler: onnxruntime's dynamic quantisation of ``onnx/sampler.onnx``, with its cost measured.

Weights become int8 (activations are quantised on the fly), so the file is about a quarter of the size; the
price is a small error in the pixel probabilities. Both are measured here against the float32 graph on the
same latent codes and recorded beside the graph (``onnx/sampler-int8.json``), so nobody takes the int8
graph without knowing what it costs. The float32 graphs stay the reference; this one is never used unasked.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from avb_zoo.errors import ExportError
from avb_zoo.modelfile.layout import INT8_REPORT, INT8_SAMPLER
from avb_zoo.runtime.ort import ort, quantization
from avb_zoo.runtime.session import session_options
from avb_zoo.util.fileio import atomic_write_bytes, atomic_write_json


def _session(source: str | bytes) -> Any:
    return ort.InferenceSession(source, session_options(1), providers=["CPUExecutionProvider"])


def _median_ms(session: Any, z: np.ndarray, repeats: int) -> float:
    session.run(None, {"z": z})  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"z": z})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def compare(float_graph: str | bytes, int8_graph: str | bytes, latent_dim: int, batch: int = 256, repeats: int = 20):
    """Max and mean abs error of the int8 graph's probabilities, and both graphs' median time per batch (ms)."""
    z = np.random.default_rng(0).standard_normal((batch, latent_dim), dtype=np.float32)
    f32, i8 = _session(float_graph), _session(int8_graph)
    ref, got = f32.run(None, {"z": z})[0], i8.run(None, {"z": z})[0]
    diff = np.abs(ref.astype(np.float64) - got)
    return {
        "batch": batch,
        "max_abs_error": float(diff.max()),
        "mean_abs_error": float(diff.mean()),
        "float32_ms": _median_ms(f32, z, repeats),
        "int8_ms": _median_ms(i8, z, repeats),
    }


def quantize_sampler(folder: str | Path, latent_dim: int) -> dict[str, Any]:
    """Write ``onnx/sampler-int8.onnx`` and its measured error and speed (``onnx/sampler-int8.json``)."""
    tools: Any = quantization()
    folder = Path(folder)
    source = folder / "onnx" / "sampler.onnx"
    if not source.is_file() or source.is_symlink():
        raise ExportError(f"{folder} has no onnx/sampler.onnx to quantise; export the model first")
    with tempfile.TemporaryDirectory(prefix="avb-zoo-int8-") as tmp:
        out = Path(tmp) / "sampler-int8.onnx"
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser's advice to pre-process is not the user's concern
        try:
            tools.quantize_dynamic(str(source), str(out), weight_type=tools.QuantType.QInt8)
        except Exception as err:  # onnxruntime's quantiser raises its own errors for graphs it cannot handle
            raise ExportError(f"onnxruntime could not quantise {source}: {err}") from None
        finally:
            root.setLevel(level)
        data = out.read_bytes()
    report = compare(str(source), data, latent_dim)
    report.update(
        file=INT8_SAMPLER,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
        float32_bytes=source.stat().st_size,
        method="onnxruntime.quantization.quantize_dynamic, weights QInt8",
    )
    atomic_write_bytes(folder / INT8_SAMPLER, data)
    atomic_write_json(folder / INT8_REPORT, report)
    return report


__all__ = ["INT8_REPORT", "INT8_SAMPLER", "compare", "quantize_sampler"]
