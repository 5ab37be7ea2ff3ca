"""The protocol in metrics.json: enough to rebuild the test images' bits without avb_zoo, and checked when read."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_eval import FAST, MNIST_SUBSET, SMALL_MNIST_AC, run, saved

from avb_zoo.errors import EvaluationError
from avb_zoo.evaluation.data import load_test_set
from avb_zoo.evaluation.protocol import check_protocol, main
from avb_zoo.modelling.weights import read_config

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def mnist_metrics(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """An MNIST evaluation (tiny model, 20 AIS steps) on 7 test images, seed 3: its folder and metrics.json."""
    folder = saved(SMALL_MNIST_AC, tmp_path_factory.mktemp("protocol") / "ac")
    code, out = run("eval", folder, *FAST, "--n-test", "7", "--seed", "3", "--data-dir", MNIST_SUBSET, "--quiet")
    assert code == 0, out
    return folder, json.loads((folder / "metrics.json").read_text())


def test_binarised_images_rebuilt_from_metrics_json_and_numpy_alone(mnist_metrics, tmp_path: Path) -> None:
    folder, metrics = mnist_metrics
    out = tmp_path / "bits.npy"
    script = HERE / "rebuild_binarized.py"
    images = MNIST_SUBSET / "t10k-images-idx3-ubyte.gz"
    done = subprocess.run(
        [sys.executable, str(script), str(folder / "metrics.json"), str(images), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rebuilt = np.load(out)
    used = load_test_set(read_config(folder), 7, seed=3, data_dir=MNIST_SUBSET)  # what the evaluation ran on
    assert used.indices == metrics["protocol"]["example_indices"]
    assert rebuilt.shape == (7, 784)
    assert np.array_equal(rebuilt, used.x.numpy().astype(np.uint8))
    assert 0 < rebuilt.mean() < 0.5  # bits, not all zeros: MNIST digits cover about 13% of the image


def test_protocol_reads_back_with_its_counts(mnist_metrics) -> None:
    _, metrics = mnist_metrics
    protocol = check_protocol(metrics)
    ais = protocol["ais"]
    assert (ais["steps"], ais["inverse_temperatures"], ais["weight_increments"], ais["transitions"]) == (20, 21, 20, 19)
    assert protocol["threads"] >= 1 and protocol["device"] == "cpu"
    assert "pilot" in ais["step_size_schedule"] and ais["pilot_steps"] == 20
    assert "AC moments" in ais["q0"]


def broken(metrics: dict, path: str, value: object = None, drop: bool = False) -> dict:
    out = copy.deepcopy(metrics)
    *parents, last = path.split(".")
    node = out
    for part in parents:
        node = node[part]
    if drop:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("path", "value", "drop", "named"),
    [
        ("protocol.ais.inverse_temperatures", None, True, "protocol.ais.inverse_temperatures is missing"),
        ("protocol.data.binarization_key", None, True, "protocol.data.binarization_key is missing"),
        ("protocol.threads", None, True, "protocol.threads is missing"),
        ("protocol.ais.inverse_temperatures", 20, False, "protocol.ais.inverse_temperatures is 20"),
        ("protocol.ais.transitions", 20, False, "protocol.ais.transitions is 20"),
        ("protocol.n_test", 8, False, "protocol.data.examples (7) differs from protocol.n_test (8)"),
        ("protocol.example_indices", [1, 2], False, "protocol.example_indices has 2 entries"),
        ("protocol.ais.pilot_steps", 50, False, "protocol.ais.pilot_steps (50) exceeds protocol.ais.steps (20)"),
        ("protocol.data.binarization_key.hash", "sha256", False, "binarization_key.hash is 'sha256'"),
        ("protocol.threads", 0, False, "protocol.threads must be a positive integer"),
    ],
)
def test_missing_or_contradicting_field_is_named(mnist_metrics, tmp_path, capsys, path, value, drop, named) -> None:
    _, metrics = mnist_metrics
    bad = broken(metrics, path, value, drop)
    with pytest.raises(EvaluationError, match=named.replace("(", r"\(").replace(")", r"\)")):
        check_protocol(bad)
    file = tmp_path / "metrics.json"
    file.write_text(json.dumps(bad))
    assert main([str(file)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err


def test_shipped_record_without_the_new_fields_is_named(capsys) -> None:
    assert main([str(HERE.parent / "models" / "mnist-vae-v1" / "metrics.json")]) == 1
    assert "protocol field protocol.threads is missing" in capsys.readouterr().err
