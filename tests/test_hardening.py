"""Issue 15, items 6, 8, 9 and 12: sizes checked before allocating, wrong successes refused, graphs checked
when opened, wrong IDX magic named, long input shortened in errors."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import shutil
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401

from avb_zoo.errors import CheckpointError, ConfigError, GraphError, IDXFormatError, InputError, shown
from avb_zoo.runtime.graph_checks import graph_ops

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "models" / "toy-avb"
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def cli(*args: object):
    from avb_zoo.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def one_error(result, *needles: str) -> str:
    """The command failed with exactly one line on stderr, no traceback, naming every needle."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A private copy of the shipped toy model (config, weights, verified graphs)."""
    return Path(shutil.copytree(TOY, tmp_path / "toy"))


def vouch(folder: Path, name: str) -> None:
    """Make onnx/verification.json record the graph's present bytes (a report that lies consistently)."""
    path = folder / "onnx" / "verification.json"
    report = json.loads(path.read_text())
    report["graphs"][name]["sha256"] = hashlib.sha256((folder / "onnx" / f"{name}.onnx").read_bytes()).hexdigest()
    path.write_text(json.dumps(report))


def with_random_op(graph: bytes, op: str = "RandomUniformLike") -> bytes:
    """The graph with noise from an in-graph random op added to its output (same names, shapes and metadata)."""
    import onnx
    from onnx import helper

    model = onnx.load_from_string(graph)
    out = model.graph.output[0].name
    for node in model.graph.node:
        node.output[:] = [f"{out}_det" if o == out else o for o in node.output]
    model.graph.node.extend(
        [
            helper.make_node(op, [f"{out}_det"], ["noise"], dtype=1),
            helper.make_node("Add", [f"{out}_det", "noise"], [out]),
        ]
    )
    return model.SerializeToString()


# ------------------------------------------------------------------------------------------- item 6
@contextlib.contextmanager
def memory_cap(extra: int = 2 << 30) -> Iterator[None]:
    """At most ``extra`` more bytes of address space meanwhile: a regression fails with MemoryError, not by
    exhausting the machine's memory."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    size = int(Path("/proc/self/status").read_text().split("VmSize:")[1].split()[0]) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def test_sizes_are_checked_before_allocating(toy: Path, tmp_path: Path) -> None:
    from avb_zoo.runtime import Encoder, Sampler

    np.save(tmp_path / "x.npy", np.eye(4, dtype=np.float32))
    Sampler(toy, providers="cpu").sample(2)  # the sessions' own memory, before the cap
    sampler, encoder = Sampler(toy, providers="cpu"), Encoder(toy, providers="cpu")
    tracemalloc.start()
    try:
        with memory_cap():
            one_error(cli("sample", toy, "--out", tmp_path / "g.png", "--columns", 10**9), "--columns 1,000,000,000")
            one_error(
                cli("encode", toy, tmp_path / "x.npy", "--out", tmp_path / "z.npy", "--samples", 10**9),
                "at most",
                "--samples",
            )
            with pytest.raises(InputError, match="draw fewer samples"):
                sampler.sample(10**9)
            with pytest.raises(InputError, match="at most"):
                encoder.encode(np.eye(4, dtype=np.float32), samples=10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20, f"{peak:,} bytes allocated to refuse"
    assert not list(tmp_path.glob("*.png")) and not (tmp_path / "z.npy").exists()

    config = json.loads((toy / "config.json").read_text())
    (toy / "config.json").write_text(json.dumps({**config, "latent_dim": 10**9}))
    one_error(cli("sample", toy, "--out", tmp_path / "g.png"), "latent_dim = 1,000,000,000", "larger than")


def test_a_npy_header_claiming_petabytes_is_refused_unread(toy: Path, tmp_path: Path) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 4)})
    (tmp_path / "peta.npy").write_bytes(header.getvalue() + bytes(64))
    with memory_cap():
        one_error(cli("encode", toy, tmp_path / "peta.npy", "--out", tmp_path / "z.npy"), "16,000,000,000,000 bytes")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (1000, 4)})
    (tmp_path / "short.npy").write_bytes(header.getvalue() + bytes(64))
    one_error(cli("encode", toy, tmp_path / "short.npy", "--out", tmp_path / "z.npy"), "truncated")


# ------------------------------------------------------------------------------------------- item 8
def test_an_unknown_config_field_is_refused_naming_it_and_the_close_one(toy: Path) -> None:
    from avb_zoo.modelling.factory import load
    from avb_zoo.runtime import Sampler

    config = json.loads((toy / "config.json").read_text())
    (toy / "config.json").write_text(json.dumps({**config, "image_shap": [1, 2, 2]}))
    for call in (lambda: load(toy), lambda: Sampler(toy, providers="cpu")):
        with pytest.raises(ConfigError, match="unknown field 'image_shap' \\(did you mean 'image_shape'\\?\\)"):
            call()
    (toy / "config.json").write_text(json.dumps({**config, "encoder": {**config["encoder"], "hiden": [4]}}))
    with pytest.raises(ConfigError, match="encoder.hiden is not a setting.*did you mean 'hidden'"):
        load(toy)


@pytest.mark.parametrize("dtype", [torch.float16, torch.int64, torch.bfloat16])
def test_weights_in_another_dtype_are_refused_naming_tensor_and_dtype(toy: Path, dtype: torch.dtype) -> None:
    from safetensors.torch import load_file, save_file

    from avb_zoo.modelling.factory import load

    tensors = load_file(toy / "model.safetensors")
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].to(dtype)
    save_file(tensors, toy / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"tensor {name} is stored as {str(dtype)[6:]}"):
        load(toy)


def test_nan_weights_are_refused_also_at_push(hub_server: HubFixture, toy: Path) -> None:  # noqa: F811
    from safetensors.torch import load_file, save_file

    tensors = load_file(toy / "model.safetensors")
    name = sorted(tensors)[-1]
    tensors[name].view(-1)[0] = float("nan")
    save_file(tensors, toy / "model.safetensors")
    one_error(cli("export", toy, "--out", toy.parent / "out"), f"tensor {name} holds 1 NaN")
    result = cli("push", toy, "--repo-id", "user/nan")
    one_error(result, f"tensor {name} holds 1 NaN")
    assert ("model", "user/nan") not in hub_server.server.repos


# ------------------------------------------------------------------------------------------- item 9
@pytest.mark.parametrize("op", ["RandomUniformLike", "RandomNormalLike", "Bernoulli"])
def test_a_graph_with_a_random_op_is_not_opened(toy: Path, tmp_path: Path, op: str) -> None:
    from avb_zoo.runtime import Sampler

    graph = toy / "onnx" / "sampler.onnx"
    graph.write_bytes(with_random_op(graph.read_bytes(), op))
    assert op in graph_ops(graph.read_bytes())
    vouch(toy, "sampler")  # even a report that records the new bytes does not make it deterministic
    with pytest.raises(GraphError, match=f"holds random op\\(s\\) \\['{op}'\\]"):
        Sampler(toy, providers="cpu")
    one_error(cli("sample", toy, "--out", tmp_path / "g.png"), "random op")


def test_a_missing_or_lying_verification_report_is_refused(toy: Path, tmp_path: Path) -> None:
    from avb_zoo.runtime import Sampler

    report = toy / "onnx" / "verification.json"
    saved = report.read_text()
    report.unlink()
    one_error(cli("sample", toy, "--out", tmp_path / "g.png"), "has no onnx/verification.json", "never verified")
    data = json.loads(saved)
    data["graphs"]["sampler"]["sha256"] = "0" * 64
    report.write_text(json.dumps(data))
    with pytest.raises(GraphError, match="not the graph its export verified"):
        Sampler(toy, providers="cpu")
    report.write_text(json.dumps({**json.loads(saved), "passed": False}))
    with pytest.raises(GraphError, match="does not record a passed verification"):
        Sampler(toy, providers="cpu")
    report.write_text(saved)
    # the decoder graph in the sampler's place: the report's hash for the sampler refuses it
    shutil.copy(toy / "onnx" / "decoder.onnx", toy / "onnx" / "sampler.onnx")
    with pytest.raises(GraphError, match="not the graph its export verified"):
        Sampler(toy, providers="cpu")


# ------------------------------------------------------------------------------------------ item 12
def test_a_wrong_idx_magic_names_the_file_expected(tmp_path: Path) -> None:
    from avb_zoo.data.idx import write_idx
    from avb_zoo.data.mnist import TRAIN_IMAGES, load_mnist

    write_idx(tmp_path / TRAIN_IMAGES, np.zeros(60, np.uint8))  # a labels file where the images belong
    with pytest.raises(IDXFormatError, match="IDX magic 00000801.*an MNIST images file.*has magic 00000803"):
        load_mnist(tmp_path, "train")


def test_errors_quote_long_input_shortened_in_one_line(tmp_path: Path) -> None:
    long = "a" * 100_000
    assert len(shown(long)) < 120 and "100,000 characters" in shown(long)
    for args in (("info", long), ("sample", long, "--out", tmp_path / "g.png"), ("train", long)):
        line = one_error(cli(*args))
        assert len(line) < 400, (args[0], len(line))


def test_a_bounded_read_reserves_the_file_not_the_limit(tmp_path: Path) -> None:
    from avb_zoo.util.bounded import read_regular

    (tmp_path / "small").write_bytes(b"x" * 1000)
    tracemalloc.start()
    try:
        assert read_regular(tmp_path / "small", 16 << 30, ConfigError) == b"x" * 1000
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak:,} bytes reserved to read 1,000"
