"""What a graph must prove before onnxruntime opens it: the bytes its export verified, and no random op.

The export records every graph's sha256 in ``onnx/verification.json`` after checking the graph against
PyTorch; a graph whose bytes differ from that record (edited, swapped, or a report that lies) is not the
graph that was verified, and a folder without the report holds graphs nobody verified. A random op
(``RandomNormal``, ``Bernoulli`` ...) would make the same seed give different outputs: noise enters the
zoo's graphs as inputs only. The ops are read from the protobuf wire format directly (a few dozen lines),
so the runtime needs neither the ``onnx`` package nor torch.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from avb_zoo.errors import GraphError
from avb_zoo.modelfile.layout import REPORT, graph_file
from avb_zoo.util.bounded import loads_json, read_regular

MAX_GRAPH_BYTES = 2 << 30  # protobuf's own limit for one message; the zoo's graphs are a few MB
MAX_REPORT_BYTES = 16 << 20  # a verification report is a few kB
# Ops whose output depends on a hidden random state (ai.onnx and onnxruntime's contrib domain); Dropout is
# random in training mode.
RANDOM_OPS = frozenset(
    {
        "RandomNormal",
        "RandomNormalLike",
        "RandomUniform",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "Dropout",
        "BiasDropout",
        "BitmaskDropout",
        "BitmaskBiasDropout",
    }
)
_MODEL_GRAPH, _MODEL_FUNCTIONS = 7, 25  # ModelProto.graph, ModelProto.functions
_GRAPH_NODE, _FUNCTION_NODE = 1, 7  # GraphProto.node, FunctionProto.node
_NODE_OP, _NODE_ATTRIBUTE = 4, 5  # NodeProto.op_type, NodeProto.attribute
_ATTR_GRAPH, _ATTR_GRAPHS = 6, 11  # AttributeProto.g, AttributeProto.graphs (If, Loop and Scan bodies)
MAX_DEPTH = 64  # nested subgraphs; deeper is not a graph any exporter writes


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def _fields(data: bytes) -> Iterator[tuple[int, bytes | None]]:
    """(field number, bytes of a length-delimited field, or None for a scalar) of one protobuf message."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
            yield number, None
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise ValueError("field runs past the end")
            yield number, data[pos : pos + size]
            pos += size
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
            yield number, None
        else:
            raise ValueError(f"malformed protobuf (wire type {wire})")


def _graph_ops(graph: bytes, node_field: int, depth: int) -> Iterator[str]:
    if depth > MAX_DEPTH:
        raise ValueError("subgraphs nested too deeply")
    for number, value in _fields(graph):
        if number != node_field or value is None:
            continue
        for field, item in _fields(value):
            if field == _NODE_OP and item is not None:
                yield item.decode("utf-8", "replace")
            elif field == _NODE_ATTRIBUTE and item is not None:
                for attr_field, sub in _fields(item):
                    if attr_field in (_ATTR_GRAPH, _ATTR_GRAPHS) and sub is not None:
                        yield from _graph_ops(sub, _GRAPH_NODE, depth + 1)


def graph_ops(model: bytes) -> set[str]:
    """Every op type in a serialized ONNX model: its graph, its subgraphs and its local functions."""
    ops: set[str] = set()
    for number, value in _fields(model):
        if number == _MODEL_GRAPH and value is not None:
            ops.update(_graph_ops(value, _GRAPH_NODE, 0))
        elif number == _MODEL_FUNCTIONS and value is not None:
            ops.update(_graph_ops(value, _FUNCTION_NODE, 0))
    return ops


def check_deterministic(model: bytes, where: object) -> None:
    """Refuse a graph holding a random op (its outputs would not follow the seed the caller gave)."""
    try:
        ops = graph_ops(model)
    except ValueError as err:
        raise GraphError(f"{where} is not a usable ONNX graph: {err}") from None
    random = sorted(ops & RANDOM_OPS)
    if random:
        raise GraphError(
            f"{where} holds random op(s) {random}: an avb-zoo graph takes its noise as an input; not opened"
        )


def read_checked(folder: Path, rel: str, limit: int, hashes: Mapping[str, str] | None) -> bytes:
    """The bytes of ``folder/rel`` (at most ``limit``); with ``hashes``, only a file they vouch for."""
    path = folder / rel
    if hashes is not None and rel not in hashes:
        raise GraphError(f"{path} is not among the model's catalogued files (its sha256 was never checked); not opened")
    try:
        data = read_regular(path, limit, GraphError, "model file")
    except FileNotFoundError:
        if rel == REPORT:
            raise GraphError(
                f"{folder} has no {REPORT}: its graphs were never verified; run `avb-zoo export {folder}`"
            ) from None
        raise GraphError(f"{folder} has no {rel}; run `avb-zoo export {folder}` first") from None
    except OSError as err:
        raise GraphError(f"cannot read {path}: {err.strerror or err}") from None
    if hashes is not None and hashlib.sha256(data).hexdigest() != hashes[rel]:
        raise GraphError(f"{path} does not match the sha256 the catalogue records for it; not opened")
    return data


def recorded_sha256(folder: Path, name: str, hashes: Mapping[str, str] | None = None) -> str:
    """The sha256 that ``onnx/verification.json`` records for graph ``name`` (the report must say it passed)."""
    where = folder / REPORT
    report: Any = loads_json(read_checked(folder, REPORT, MAX_REPORT_BYTES, hashes), where, GraphError)
    entry = report.get("graphs", {}).get(name) if isinstance(report, dict) else None
    if not isinstance(report, dict) or report.get("passed") is not True:
        raise GraphError(f"{where} does not record a passed verification; run `avb-zoo export {folder}`")
    digest = entry.get("sha256") if isinstance(entry, dict) else None
    if not isinstance(digest, str):
        raise GraphError(f"{where} records no verified {graph_file(name)}; run `avb-zoo export {folder}`")
    return digest


def verified_graph(folder: Path, name: str, hashes: Mapping[str, str] | None = None) -> bytes:
    """The bytes of graph ``name``, once they match the export's record and hold no random op.

    The bytes checked are the bytes run: the caller hands them to onnxruntime, never the path.
    """
    rel = graph_file(name)
    data = read_checked(folder, rel, MAX_GRAPH_BYTES, hashes)
    if hashlib.sha256(data).hexdigest() != recorded_sha256(folder, name, hashes):
        raise GraphError(
            f"{folder / rel} is not the graph its export verified (its sha256 differs from {REPORT}); not opened"
        )
    check_deterministic(data, folder / rel)
    return data
