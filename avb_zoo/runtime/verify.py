"""``avb-zoo verify``: run each graph's test_data_set on onnxruntime (no torch) and report the worst error.

The export writes, per graph, fixed inputs and the outputs PyTorch computed for them
(``onnx/test_data/<graph>/test_data_set_0``, the ONNX model zoo's layout). Running them here checks, on this
machine's onnxruntime, that the graphs still compute that function; a changed graph or test file fails.
Each test file is opened only when its sha256 was checked (the catalogue's, the Hub's or the export's own
record in verification.json).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avb_zoo.errors import GraphError
from avb_zoo.modelfile.files import TEST_DATA_FILES, test_data_dir
from avb_zoo.modelfile.layout import GRAPHS, ONNX_DIR, REPORT_FILE, graph_file
from avb_zoo.runtime.graph_checks import MAX_REPORT_BYTES, read_checked
from avb_zoo.runtime.locate import ModelFolder, open_model_folder
from avb_zoo.runtime.session import GraphSession
from avb_zoo.util.bounded import loads_json, read_regular

VERIFY_ATOL = 1e-4  # the export's own tolerance between onnxruntime and torch, on graph_error's scale
MAX_TEST_FILE = 64 << 20


def _recorded(folder: Path, hashes: Mapping[str, str] | None) -> dict[str, str]:
    """The test files' sha256 as the export recorded them in verification.json."""
    rel = f"{ONNX_DIR}/{REPORT_FILE}"
    if not (folder / rel).is_file():
        return {}
    raw = read_checked(folder, rel, MAX_REPORT_BYTES, hashes)
    try:
        graphs = loads_json(raw, folder / rel, GraphError).get("graphs", {})
        return {k: v for g in graphs.values() for k, v in (g.get("test_data") or {}).items()}
    except (ValueError, AttributeError):
        raise GraphError(f"{folder / rel} is not a valid verification report") from None


def _tensor(folder: Path, rel: str, hashes: Mapping[str, str] | None, recorded: Mapping[str, str]) -> tuple:
    """(name, array) of one TensorProto file, opened only once its sha256 is known to be right."""
    from onnx import TensorProto, numpy_helper

    if hashes is not None and rel in hashes:
        data = read_checked(folder, rel, MAX_TEST_FILE, hashes)
    else:
        data = read_regular(folder / rel, MAX_TEST_FILE, GraphError, rel)
        want = recorded.get(rel)
        if want is None:
            raise GraphError(f"{folder / rel} is not recorded in the export's verification.json; not opened")
        if hashlib.sha256(data).hexdigest() != want:
            raise GraphError(f"{folder / rel} does not match the sha256 the export recorded for it")
    proto = TensorProto()
    try:
        proto.ParseFromString(data)
        array = numpy_helper.to_array(proto)
    except Exception:  # protobuf's and onnx's own errors for bytes that are not a tensor
        raise GraphError(f"{folder / rel} is not an ONNX TensorProto") from None
    return proto.name, array


def graph_error(got: np.ndarray, expected: np.ndarray) -> float:
    """max |got - expected| / max(1, |expected|): absolute for values up to 1, relative above.

    float32 rounding is relative (an ulp is 2^-23 |x|), so one absolute tolerance would be ~800 ulps for a
    probability but ~7 for a trained decoder's logit of 130, where a different summation order alone moves
    the last digits; inf where the shapes differ or a value is not finite."""
    if got.shape != expected.shape or not (np.isfinite(got).all() and np.isfinite(expected).all()):
        return float("inf")
    reference = expected.astype(np.float64)
    return float((np.abs(got.astype(np.float64) - reference) / np.maximum(1.0, np.abs(reference))).max())


def verify_graph(folder: Path, graph: str, config: Mapping[str, Any], session: GraphSession, **kw: Any) -> float:
    """The worst :func:`graph_error` of one graph on its test_data_set."""
    inputs, outputs = GRAPHS[graph]
    root = test_data_dir(graph)
    files = [rel for rel in TEST_DATA_FILES if rel.startswith(root + "/")]
    missing = [rel for rel in files if not (folder / rel).is_file()]
    if missing:
        raise GraphError(f"{folder / graph_file(graph)} has no test data ({missing[0]}); re-export it")
    feeds, expected = {}, []
    for i, name in enumerate(inputs):
        got_name, array = _tensor(folder, f"{root}/input_{i}.pb", **kw)
        if got_name != name:
            raise GraphError(f"{folder / root}/input_{i}.pb holds {got_name!r}, the graph's input {i} is {name!r}")
        feeds[name] = np.ascontiguousarray(array, dtype=np.float32)
    for i, _ in enumerate(outputs):
        expected.append(_tensor(folder, f"{root}/output_{i}.pb", **kw)[1])
    got = session.run(feeds)
    return max(graph_error(out, ref) for out, ref in zip(got, expected, strict=True))


def verify_model(
    model: str | Path | ModelFolder, providers: str | Sequence[str] | None = "cpu", atol: float = VERIFY_ATOL
) -> dict[str, Any]:
    """Run every exported graph's test data; raises GraphError naming the graph when one exceeds ``atol``."""
    located = open_model_folder(model)
    folder, hashes, config = located.folder, located.hashes, located.config
    recorded = _recorded(folder, hashes)
    errors: dict[str, float] = {}
    for graph in GRAPHS:
        if not (folder / graph_file(graph)).exists():
            continue
        session = GraphSession(folder, graph, config, providers, None, hashes)
        errors[graph] = verify_graph(folder, graph, config, session, hashes=hashes, recorded=recorded)
    if not errors:
        raise GraphError(f"{folder} has no ONNX graphs; run `avb-zoo export` first")
    worst_graph = max(errors, key=lambda g: errors[g])
    result = {"folder": str(folder), "errors": errors, "worst": errors[worst_graph], "graph": worst_graph}
    result["atol"], result["passed"] = atol, errors[worst_graph] <= atol
    if not result["passed"]:
        raise GraphError(
            f"{folder / graph_file(worst_graph)} fails its test data: max error {errors[worst_graph]:.3g} "
            f"(|onnxruntime - recorded| / max(1, |recorded|)) exceeds {atol:g} (a changed graph or test file)"
        )
    return result
