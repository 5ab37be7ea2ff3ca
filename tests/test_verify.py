"""ONNX that checks itself: each export carries a test_data_set per graph; `avb-zoo verify` runs them without torch."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from avb_zoo.cli import main
from budget import budget
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from onnx import numpy_helper
from onnx_models import exported

import avb_zoo.catalogue.registry as reg
from avb_zoo.errors import GraphError
from avb_zoo.modelfile.files import TEST_DATA_FILES
from avb_zoo.runtime.verify import verify_model

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return exported(tmp_path_factory, "mnist")


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_every_shipped_model_verifies_and_prints_its_worst_error() -> None:
    shipped = [s for s in reg.all_specs() if s.local_dir is not None]
    assert shipped
    for spec in shipped:
        result = cli("verify", spec.id)
        assert result.exit_code == 0, result.output
        assert "worst: " in result.output and "passed" in result.output


def test_an_export_writes_the_model_zoo_layout_and_verifies(mnist: Path) -> None:
    for graph in ("encoder", "moments", "decoder", "sampler"):
        root = mnist / "onnx" / "test_data" / graph / "test_data_set_0"
        assert (root / "input_0.pb").is_file() and (root / "output_0.pb").is_file()
    proto = numpy_helper.to_array(
        __import__("onnx").load_tensor(str(mnist / "onnx/test_data/encoder/test_data_set_0/input_1.pb"))
    )
    assert proto.dtype == np.float32 and proto.ndim == 2
    result = verify_model(mnist)
    assert result["passed"] and set(result["errors"]) == {"encoder", "moments", "decoder", "sampler"}
    assert result["worst"] <= 1e-4


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_a_corrupted_test_data_set_or_graph_fails(mnist: Path, tmp_path: Path) -> None:
    folder = _copy(mnist, tmp_path / "outputs")
    out = folder / "onnx/test_data/sampler/test_data_set_0/output_0.pb"
    array = numpy_helper.to_array(__import__("onnx").load_tensor(str(out)))
    out.write_bytes(numpy_helper.from_array(array + 0.01, "probs").SerializeToString())
    result = cli("verify", folder)
    assert result.exit_code == 1 and "output_0.pb does not match the sha256 the export recorded" in result.output
    # the same change with the report's record updated: the numbers themselves fail
    import hashlib
    import json

    report_path = folder / "onnx/verification.json"
    report = json.loads(report_path.read_text())
    rel = "onnx/test_data/sampler/test_data_set_0/output_0.pb"
    report["graphs"]["sampler"]["test_data"][rel] = hashlib.sha256(out.read_bytes()).hexdigest()
    report_path.write_text(json.dumps(report))
    with pytest.raises(GraphError, match=r"sampler.onnx fails its test data: max error 0.01"):
        verify_model(folder)
    folder = _copy(mnist, tmp_path / "graph")
    graph = folder / "onnx/decoder.onnx"
    data = bytearray(graph.read_bytes())
    data[len(data) // 2] ^= 0xFF
    graph.write_bytes(bytes(data))
    result = cli("verify", folder)
    assert result.exit_code == 1 and "Traceback" not in result.output and "decoder" in result.output
    folder = _copy(mnist, tmp_path / "missing")
    (folder / "onnx/test_data/encoder/test_data_set_0/input_1.pb").unlink()
    assert "has no test data" in cli("verify", folder).output


def test_verify_imports_no_torch() -> None:
    code = (
        "import sys\nfrom avb_zoo.cli import main\n"
        "try:\n    main(['verify', 'toy-avb'])\nexcept SystemExit as e:\n    assert e.code in (0, None)\n"
        "assert 'torch' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget(120))
    assert result.returncode == 0, result.stderr


def test_pushed_test_data_verifies_by_hub_id(hub_server: HubFixture, mnist: Path, monkeypatch) -> None:  # noqa: F811
    from avb_zoo.hub.resolve import fetch
    from avb_zoo.modelling.publishing import push

    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    push(mnist, "me/checked")
    pulled = fetch("hf-hub:me/checked", progress=False)
    assert {f for f in TEST_DATA_FILES if "/posterior/" not in f} <= set(pulled.files)  # an image model's graphs
    result = cli("verify", "hf-hub:me/checked")
    assert result.exit_code == 0, result.output


def test_int8_sampler_is_written_with_its_measured_error_and_speed(mnist: Path, tmp_path: Path) -> None:
    import json

    from avb_zoo.export.quantize import INT8_REPORT, quantize_sampler

    folder = _copy(mnist, tmp_path / "int8")
    report = quantize_sampler(folder, json.loads((folder / "config.json").read_text())["latent_dim"])
    assert (folder / "onnx/sampler-int8.onnx").stat().st_size < (folder / "onnx/sampler.onnx").stat().st_size
    assert 0 < report["max_abs_error"] < 0.1 and report["int8_ms"] > 0 and report["float32_ms"] > 0
    assert json.loads((folder / INT8_REPORT).read_text())["sha256"] == report["sha256"]
    assert verify_model(folder)["passed"]  # the float32 graphs are untouched


def test_the_graph_error_is_absolute_up_to_one_and_relative_above() -> None:
    """float32 rounding is relative: 1.3e-3 off a logit of 130 is 1e-5 relative, 2e-4 off a probability stays 2e-4."""
    from avb_zoo.runtime.verify import graph_error

    expected = np.array([0.5, -130.0], dtype=np.float32)
    assert graph_error(np.array([0.5 + 2e-4, -130.0], dtype=np.float32), expected) == pytest.approx(2e-4, rel=1e-3)
    assert graph_error(np.array([0.5, -130.0 + 1.3e-3], dtype=np.float32), expected) == pytest.approx(1e-5, rel=0.05)
    assert graph_error(np.array([0.5], dtype=np.float32), expected) == np.inf
    assert graph_error(np.array([np.nan, -130.0], dtype=np.float32), expected) == np.inf
