"""Loading a model folder: hostile config.json and corrupt safetensors give one clear error each."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save as st_save

from avb_zoo.errors import CheckpointError, ConfigError
from avb_zoo.model import AVBModel
from avb_zoo.model_io import load, save

TINY = {
    "method": "vae",
    "x_dim": 4,
    "latent_dim": 2,
    "encoder": {"name": "gaussian", "hidden": [8]},
    "decoder": {"name": "bernoulli", "hidden": [8]},
    "data": {"name": "toy"},
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save(AVBModel(TINY), tmp_path / "model")


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
        ({"format_version": 0}, "format_version 0 is not supported"),
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


def test_missing_files(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a model folder"):
        load(tmp_path / "nothing-here")
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not exist"):
        load(folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="holds no config.json"):
        load(folder)


def _header(tensors: dict) -> bytes:
    return json.dumps(tensors).encode()


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda raw: raw[:4], r"not a safetensors file \(only 4 bytes\)"),
        (lambda raw: raw[: len(raw) // 2], "truncated or corrupt"),
        (lambda raw: struct.pack("<Q", len(raw) * 10) + raw[8:], r"header claims \d+ bytes, the file has \d+"),
        (lambda raw: struct.pack("<Q", 2**63) + raw[8:], "header claims"),
        (lambda raw: struct.pack("<Q", 4) + b"\xff\xfe{}" + raw[12:], "its header is not JSON"),
        (lambda raw: struct.pack("<Q", 2) + b"[]", "its header is not a JSON object"),
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


def test_strict_weights_name_missing_unexpected_and_misshaped(folder: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(folder / "model.safetensors")
    name = sorted(tensors)[0]
    changed = dict(tensors)
    changed[name] = torch.zeros(3, 3)
    changed.pop(sorted(tensors)[1])
    changed["encoder.extra"] = torch.zeros(1)
    (folder / "model.safetensors").write_bytes(st_save(changed, metadata={"format_version": "1"}))
    with pytest.raises(CheckpointError, match="does not match config.json") as err:
        load(folder)
    text = str(err.value)
    assert f"missing ['{sorted(tensors)[1]}']" in text and "unexpected ['encoder.extra']" in text
    assert f"mis-shaped ['{name} (3, 3)" in text
