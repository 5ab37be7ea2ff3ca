"""torch module -> ONNX ModelProto with the dynamo exporter: dynamic batch, weights inside, metadata stamped.

Settings follow the reference notes on torch >= 2.9: ``dynamo=True`` with ``dynamic_shapes`` (not
``dynamic_axes``), ``external_data=False`` so each small graph is one file, opset 18 or newer. A graph with
a random op, or one the ONNX checker rejects, is refused.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Mapping

import onnx
import torch

from avb_zoo.errors import ExportError
from avb_zoo.modelfile.layout import META_PREFIX

from .graphs import GraphSpec

DEFAULT_OPSET = 18
RANDOM_OPS = frozenset(
    {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli", "Multinomial"}
)
EXAMPLE_BATCH = 3  # not 0 or 1, which torch.export would specialise


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notices that say nothing about this export (missing torchvision, axis names)."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*axis name.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        registration.setLevel(level)


def to_onnx(spec: GraphSpec, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """Export ``spec.module`` with a dynamic batch dimension named ``batch`` on every input and output."""
    if opset < 18:
        raise ExportError(f"opset {opset} is too old; the exporter needs 18 or newer")
    batch = torch.export.Dim("batch")
    args = spec.example(EXAMPLE_BATCH, torch.Generator().manual_seed(0))
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                spec.module,
                args,
                dynamo=True,
                opset_version=opset,
                input_names=list(spec.inputs),
                output_names=list(spec.outputs),
                dynamic_shapes={name: {0: batch} for name in spec.inputs},
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as err:  # the exporter raises many error types; name the graph and the first line
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExportError(f"{spec.name} graph: torch.onnx.export failed: {first}") from err
    if program is None:
        raise ExportError(f"{spec.name} graph: torch.onnx.export returned no program")
    proto = program.model_proto
    check_proto(proto, spec.name)
    return proto


def check_proto(proto: onnx.ModelProto, name: str) -> None:
    """The ONNX checker's verdict, and no random ops anywhere (noise must come in as an input)."""
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as err:
        raise ExportError(f"{name} graph fails the ONNX checker: {str(err).splitlines()[0]}") from None
    nodes = list(proto.graph.node) + [n for f in proto.functions for n in f.node]
    random = sorted({n.op_type for n in nodes if n.op_type in RANDOM_OPS})
    if random:
        raise ExportError(f"{name} graph contains random ops {random}; noise must be an input")


def stamp(proto: onnx.ModelProto, props: Mapping[str, str], doc: str, model_version: int | None) -> None:
    """Write ``avb_zoo.*`` metadata_props (read back by onnxruntime's custom_metadata_map) and the doc string."""
    onnx.helper.set_model_props(proto, {META_PREFIX + key: str(value) for key, value in props.items()})
    proto.doc_string = doc
    if model_version is not None:
        proto.model_version = model_version
