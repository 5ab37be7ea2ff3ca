"""Fixed inputs and the torch module's outputs for each exported graph, in the ONNX model zoo's layout.

``onnx/test_data/<graph>/test_data_set_0/input_<i>.pb`` and ``output_<i>.pb`` (TensorProtos written by
``onnx.numpy_helper``): anyone can check, on onnxruntime alone and without torch, that a graph still computes
what PyTorch computed at export time (``avb-zoo verify``). The inputs are keyed, so a re-export writes the
same inputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
from onnx import numpy_helper

from avb_zoo.modelfile.files import test_data_dir

from .graphs import GraphSpec

TEST_BATCH = 3
TEST_SEED = 20170801  # keys the fixed inputs (the paper's ICML year and month)


def test_data_files(spec: GraphSpec) -> dict[str, bytes]:
    """The .pb files of one graph's test_data_set_0, by path inside the model folder."""
    generator = torch.Generator().manual_seed(TEST_SEED)
    inputs = spec.example(TEST_BATCH, generator)
    with torch.no_grad():
        outputs = spec.reference(*inputs)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    root = test_data_dir(spec.name)
    files: dict[str, bytes] = {}
    for kind, names, tensors in (("input", spec.inputs, inputs), ("output", spec.outputs, outputs)):
        for i, (name, tensor) in enumerate(zip(names, tensors, strict=True)):
            proto = numpy_helper.from_array(tensor.detach().cpu().float().numpy(), name)
            files[f"{root}/{kind}_{i}.pb"] = proto.SerializeToString()
    return files


def write_test_data(folder: Path, specs: list[GraphSpec]) -> dict[str, bytes]:
    """All graphs' test data (not yet written): the exporter writes them with the graphs, atomically."""
    files: dict[str, bytes] = {}
    for spec in specs:
        files.update(test_data_files(spec))
    return files
