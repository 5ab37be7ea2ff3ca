"""Every model the package ships: its files are the catalogue's (by sha256), within the size limit, and it
still gives the outputs recorded when it was shipped, through onnxruntime and through torch alike."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avb_zoo.catalogue.registry import all_specs
from avb_zoo.modelling.factory import load
from avb_zoo.runtime import PosteriorSampler, open_sampler

RECORD = Path(__file__).parent / "data" / "shipped_outputs.json"
MAX_FILE_BYTES = 16 * 2**20
# float32 graphs on another CPU or onnxruntime build differ from the recording by rounding only (~1e-6); the
# exporter itself accepts 1e-4 between a graph and its torch module, so that is the bound used here too.
ATOL = 1e-4

SHIPPED = [s for s in all_specs() if s.local_dir is not None]


def test_the_package_ships_models_and_records_each() -> None:
    ids = {s.id for s in SHIPPED}
    assert "toy-avb-v1" in ids
    assert set(json.loads(RECORD.read_text())) == ids, "rerun tools/record_shipped_outputs.py"


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.id)
def test_shipped_files_are_exactly_the_catalogued_ones(spec) -> None:
    folder = Path(spec.local_dir)
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    present = {p for p in present if "__pycache__" not in p}
    assert present == set(spec.files), "the shipped folder and the catalogue's file list differ"
    for rel, digest in spec.files.items():
        data = (folder / rel).read_bytes()
        assert len(data) <= MAX_FILE_BYTES, rel
        assert hashlib.sha256(data).hexdigest() == digest, rel
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["model"]["id"] == spec.id


@pytest.mark.parametrize("spec", SHIPPED, ids=lambda s: s.id)
def test_shipped_model_reproduces_its_recorded_output(spec) -> None:
    record = json.loads(RECORD.read_text())[spec.id]
    folder = Path(spec.local_dir)
    sampler = open_sampler(folder)
    model = load(folder)
    expected = np.asarray(record["values"], dtype=np.float64)
    if isinstance(sampler, PosteriorSampler):
        got = sampler.draw(8, seed=0)
        eps = sampler.noise(8, seed=0)
        with torch.no_grad():
            by_torch = model.encode(torch.zeros(8, 0), eps=torch.from_numpy(eps)).numpy()
    else:
        stride = int(record["kind"].split("::")[1].rstrip("]"))
        got = sampler.sample(4, seed=0)[:, ::stride]
        with torch.no_grad():
            by_torch = torch.sigmoid(model.decode_logits(torch.from_numpy(sampler.prior(4, seed=0)))).numpy()
        by_torch = by_torch[:, ::stride]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    np.testing.assert_allclose(by_torch, expected, rtol=0, atol=ATOL)


@pytest.mark.parametrize("damage", ["changed", "missing"])
def test_a_damaged_shipped_copy_is_named_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    """No Hub, empty cache, and the package's copy damaged: pull names the model and the file, writes nothing."""
    import shutil

    from avb_zoo.cli import main
    from click.testing import CliRunner

    import avb_zoo

    spec = avb_zoo.spec("toy-avb-v1")
    copy = tmp_path / "shipped"
    shutil.copytree(spec.local_dir, copy)
    target = copy / "model.safetensors"
    if damage == "changed":
        data = bytearray(target.read_bytes())
        data[-1] ^= 1
        target.write_bytes(bytes(data))
    else:
        target.unlink()
    monkeypatch.setattr(spec, "local_dir", copy)
    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    done = CliRunner().invoke(main, ["pull", "toy-avb-v1"])
    assert done.exit_code == 1, done.output
    assert done.output.startswith("error: ") and done.output.count("\n") == 1, done.output
    assert "toy-avb-v1" in done.output and "model.safetensors" in done.output
    assert not cache.exists() or not any(p.is_file() for p in cache.rglob("*"))


@pytest.mark.parametrize(
    ("image", "command"),
    [
        ("mnist-avb-ac-samples.png", ["sample", "mnist-avb-ac", "-n", "64", "--seed", "0", "--scale", "2"]),
        ("mnist-avb-ac-reconstructions.png", ["reconstruct", "mnist-avb-ac", "DIGITS", "--seed", "0", "--scale", "2"]),
    ],
)
def test_the_readme_images_are_what_the_shipped_model_draws(tmp_path: Path, image: str, command: list[str]) -> None:
    """The README shows docs/<image> as what its quick-start commands write: they still write it (to a gray level)."""
    from avb_zoo.cli import main
    from click.testing import CliRunner
    from PIL import Image

    runner = CliRunner()
    digits = tmp_path / "digits.npy"
    done = runner.invoke(main, ["data", "digits", "--bundled", "-n", "16", "--out", str(digits)])
    assert done.exit_code == 0, done.output
    out = tmp_path / "out.png"
    args = [str(digits) if a == "DIGITS" else a for a in command]
    done = runner.invoke(main, [*args, "--out", str(out)])
    assert done.exit_code == 0, done.output
    shown = np.asarray(Image.open(Path(__file__).parents[1] / "docs" / image).convert("L"), dtype=np.int16)
    made = np.asarray(Image.open(out).convert("L"), dtype=np.int16)
    assert made.shape == shown.shape
    assert np.abs(made - shown).max() <= 1  # float32 rounding on another CPU moves a pixel by one gray level at most
