"""Loading a model folder: hostile config.json and corrupt safetensors give one clear error each.

(tests/test_model_io.py covers strict weight loading and the common corrupt files; these are the hostile cases.)
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from zoo_helpers import TINY, model_folder

from avb_zoo.errors import CheckpointError, ConfigError
from avb_zoo.modelling.factory import load


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return model_folder(tmp_path / "model", TINY)


def _config(folder: Path, **changes) -> None:
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def test_a_good_folder_loads(folder: Path) -> None:
    model = load(folder)
    assert model.latent_dim == 2 and not model.training


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format_version": 2}, r"format_version 2, newer than this avb-zoo reads \(1\): upgrade avb-zoo"),
        ({"format_version": "1"}, "format_version must be an integer, got '1'"),
        ({"format_version": True}, "format_version must be an integer, got True"),
        ({"format_version": None}, "format_version must be an integer, got None"),
        ({"format_version": 0}, "format_version 0; this avb-zoo reads 1 to 1"),
        ({"latent_dim": "2"}, "latent_dim must be an integer, got '2'"),
        ({"latent_dim": 10**12}, "latent_dim = 1000000000000 is out of range"),
        ({"method": "gan"}, r"method = 'gan'; choose one of"),
        ({"encoder": {"name": "transformer"}}, "encoder.name = 'transformer' is not a known architecture"),
        ({"encoder": {"name": "gaussian", "hidden": [8], "heads": 4}}, "encoder.heads is not a setting"),
        ({"encoder": {"name": "gaussian", "hidden": [65536, 65536, 65536]}}, r"encoder would have [\d,]+ parameters"),
        ({"encoder": {"name": "gaussian", "hidden": list(range(1, 100))}}, "encoder.hidden has 99 entries"),
        ({"encoder": {"name": "gaussian", "hidden": [[8]]}}, r"encoder.hidden\[0\] must be a number"),
        ({"encoder": "gaussian"}, "encoder must be a table"),
        ({"image_shape": [1, 3, 3]}, r"image_shape \[1, 3, 3\] does not hold x_dim = 4"),
    ],
)
def test_hostile_config_is_refused_naming_the_file(folder: Path, changes: dict, message: str) -> None:
    _config(folder, **changes)
    with pytest.raises(ConfigError, match=message) as err:
        load(folder)
    assert str(err.value).startswith(str(folder / "config.json"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ("[1, 2, 3]", "must hold a JSON object, got list"),
        ('{"format_version": 1, "method": "vae", "latent_dim": 1e400}', "latent_dim must be an integer, got inf"),
        ("\udcff", "is not valid JSON"),
    ],
)
def test_unreadable_config(folder: Path, text: str, message: str) -> None:
    (folder / "config.json").write_bytes(text.encode("utf-8", "surrogateescape"))
    with pytest.raises(ConfigError, match=message):
        load(folder)


def test_huge_config_is_not_parsed(folder: Path) -> None:
    (folder / "config.json").write_text('{"pad": "' + "x" * (2 << 20) + '"}')
    with pytest.raises(ConfigError, match="a model config.json is at most"):
        load(folder)


def _header(tensors: dict) -> bytes:
    return json.dumps(tensors).encode()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: struct.pack("<Q", 2**63) + raw[8:], "header claims"),
        (
            lambda raw: (
                struct.pack("<Q", 80)
                + _header({"x": {"dtype": "F32", "shape": [4], "data_offsets": [0, 1600]}}).ljust(80)
                + bytes(16)
            ),
            "tensor 'x' lies outside the file",
        ),
        (
            lambda raw: (
                struct.pack("<Q", 80)
                + _header({"x": {"dtype": "F32", "shape": [5], "data_offsets": [0, 16]}}).ljust(80)
                + bytes(16)
            ),
            "is corrupt",
        ),
    ],
)
def test_corrupt_safetensors(folder: Path, mangle, message: str) -> None:  # noqa: ANN001
    path = folder / "model.safetensors"
    path.write_bytes(mangle(path.read_bytes()))
    with pytest.raises(CheckpointError, match=message) as err:
        load(folder)
    assert str(path) in str(err.value)
