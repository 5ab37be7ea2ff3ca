"""Images a person draws: ink on a transparent sheet is read as ink (not laid over white into a blank), dark ink
on white paper is taken with --invert, and a folder's files that are not images are named in a warning."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from onnx_models import exported
from PIL import Image

from avb_zoo.errors import InputWarning
from avb_zoo.runtime import load_images

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return exported(tmp_path_factory, "mnist")


@pytest.fixture(scope="module")
def digit() -> np.ndarray:
    from avb_zoo.data.mnist import load_mnist

    return load_mnist("tests/data/mnist-subset", "test")[0].numpy().reshape(28, 28)  # uint8, white on black


def _cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("ink", [(255, 255, 255), (0, 0, 0), (200, 30, 30)], ids=["white", "black", "red"])
def test_ink_on_a_transparent_sheet_is_the_digit(digit: np.ndarray, tmp_path, ink) -> None:
    rgba = np.zeros((28, 28, 4), dtype=np.uint8)
    rgba[..., :3] = ink
    rgba[..., 3] = digit  # opaque where the digit is, transparent elsewhere
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "drawn.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        x = load_images(tmp_path / "drawn.png", SHAPE)
    np.testing.assert_allclose(x[0], digit.reshape(-1) / 255, atol=1e-6)
    said = " ".join(str(w.message) for w in caught)
    assert "inverted" not in said and "read as ink where opaque" in said


def test_an_opaque_rgba_image_is_read_as_grey(digit: np.ndarray, tmp_path) -> None:
    Image.fromarray(digit).convert("RGBA").save(tmp_path / "opaque.png")
    with pytest.warns(InputWarning):
        x = load_images(tmp_path / "opaque.png", SHAPE)
    np.testing.assert_allclose(x[0], digit.reshape(-1) / 255, atol=1e-6)


def test_invert_takes_dark_ink_on_white_paper(mnist, digit: np.ndarray, tmp_path) -> None:
    Image.fromarray(255 - digit).save(tmp_path / "paper.png")
    x = load_images(tmp_path / "paper.png", SHAPE, invert=True)
    np.testing.assert_allclose(x[0], digit.reshape(-1) / 255, atol=1e-6)
    with pytest.warns(InputWarning, match="look inverted.*--invert"):
        _cli("encode", mnist, tmp_path / "paper.png", "--out", tmp_path / "a.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        inverted = _cli("encode", mnist, tmp_path / "paper.png", "--out", tmp_path / "b.npy", "--invert")
    assert inverted.exit_code == 0, inverted.output
    Image.fromarray(digit).save(tmp_path / "mnist.png")
    _cli("encode", mnist, tmp_path / "mnist.png", "--out", tmp_path / "c.npy")
    np.testing.assert_allclose(np.load(tmp_path / "b.npy"), np.load(tmp_path / "c.npy"), atol=1e-5)
    result = _cli("reconstruct", mnist, tmp_path / "paper.png", "--out", tmp_path / "r.png", "--invert", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["images"] == 1


def test_files_a_folder_holds_that_are_no_images_are_named(digit: np.ndarray, tmp_path) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    Image.fromarray(digit).save(folder / "a.png")
    np.save(folder / "more.npy", digit[None])
    (folder / "notes.txt").write_text("x")
    with pytest.warns(InputWarning, match=r"skipped 2 entries that are no image files: more\.npy, notes\.txt"):
        x = load_images(folder, SHAPE)
    assert x.shape == (1, 784)
