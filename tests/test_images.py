"""Images through Pillow: any format by extension, --scale, labelled grids, any input size and mode, inverted
digits and 16-bit PNGs (issue 17 item 5, issue 15 item 10)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from avb_zoo.cli import main
from budget import budget
from click.testing import CliRunner
from onnx_models import exported
from PIL import Image

from avb_zoo.errors import InputError, InputWarning
from avb_zoo.runtime import load_images
from avb_zoo.runtime.images import reconstruction_grid, sample_grid

SHAPE = (1, 28, 28)


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return exported(tmp_path_factory, "mnist")


@pytest.fixture(scope="module")
def digits():
    from avb_zoo.data.mnist import load_mnist

    return load_mnist("tests/data/mnist-subset", "test")[:4].numpy().reshape(4, 28, 28)  # uint8, white on black


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize(("suffix", "fmt"), [(".jpg", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP"), (".tiff", "TIFF")])
def test_sample_writes_any_format_pillow_writes(mnist, tmp_path, suffix, fmt):
    out = tmp_path / f"grid{suffix}"
    done = run_cli("sample", mnist, "-n", "4", "--out", out, "--seed", "0")
    assert done.exit_code == 0, done.output
    assert Image.open(out).format == fmt


def test_unknown_format_and_unwritable_output_fail_in_one_line(mnist, digits, tmp_path):
    np.save(tmp_path / "x.npy", digits)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for args in (
        ["sample", mnist, "-n", "4", "--out", tmp_path / "grid.xyz"],
        ["reconstruct", mnist, tmp_path / "x.npy", "--out", tmp_path / "r.notaformat"],
        ["sample", mnist, "-n", "4", "--out", blocker / "grid.png"],
        ["sample", mnist, "-n", "4", "--out", tmp_path / "g.png", "--npy", blocker / "s.npy"],
    ):
        done = run_cli(*args)
        assert done.exit_code == 1, done.output
        assert done.output.count("\n") == 1 and done.output.startswith("error: "), done.output
        assert "Traceback" not in done.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "x.npy"]  # nothing half-written


def test_scale_enlarges_every_pixel(mnist, tmp_path):
    run_cli("sample", mnist, "-n", "4", "--out", tmp_path / "a.png", "--no-labels")
    run_cli("sample", mnist, "-n", "4", "--out", tmp_path / "b.png", "--no-labels", "--scale", "3")
    a, b = np.asarray(Image.open(tmp_path / "a.png")), np.asarray(Image.open(tmp_path / "b.png"))
    assert b.shape == (3 * a.shape[0], 3 * a.shape[1])
    np.testing.assert_array_equal(b[::3, ::3], a)
    done = run_cli("sample", mnist, "-n", "4", "--out", tmp_path / "c.png", "--scale", "0")
    assert done.exit_code == 2 and not (tmp_path / "c.png").exists()


def test_grids_are_labelled(digits):
    x = digits.reshape(4, -1).astype(np.float32) / 255
    plain = sample_grid(x, SHAPE, None, labels=False)
    labelled = sample_grid(x, SHAPE, None, labels=True)
    top, left = labelled.shape[0] - plain.shape[0], labelled.shape[1] - plain.shape[1]
    assert top > 0 and left > 0  # a band for column numbers above, row numbers on the left
    np.testing.assert_array_equal(labelled[top:, left:], plain)
    assert (labelled[:top, left:] < 128).any() and (labelled[top:, :left] < 128).any()  # ink in both bands
    recon = reconstruction_grid(x, x, SHAPE, scale=2)
    plain_recon = reconstruction_grid(x, x, SHAPE, scale=2, labels=False)
    assert recon.shape[0] > plain_recon.shape[0] and recon.shape[1] > plain_recon.shape[1]
    assert plain_recon.shape == (2 * (2 * 30 + 2), 2 * (4 * 30 + 2))  # 2 rows of 2 pairs (in, out), scaled 2x


def test_any_size_and_mode_is_converted_with_a_warning(digits, tmp_path):
    digit = digits[0]
    big = Image.fromarray(digit).resize((100, 100), Image.Resampling.BICUBIC)
    big.convert("RGB").save(tmp_path / "big.png")
    Image.fromarray(digit).convert("RGB").save(tmp_path / "same.jpg", quality=100)
    with pytest.warns(InputWarning, match=r"RGB made grey, 100x100 resized to 28x28"):
        x = load_images(tmp_path / "big.png", SHAPE)
    assert x.shape == (1, 784)
    assert np.abs(x[0] - digit.reshape(-1) / 255).mean() < 0.05  # the same digit after the round trip
    with pytest.warns(InputWarning, match="made grey"):
        x = load_images(tmp_path / "same.jpg", SHAPE)  # a JPEG input is read too
    assert np.abs(x[0] - digit.reshape(-1) / 255).max() < 0.1


def test_inverted_digits_are_detected(digits, tmp_path):
    np.save(tmp_path / "inverted.npy", 255 - digits)
    with pytest.warns(InputWarning, match="4 of 4 image.*look inverted"):
        load_images(tmp_path / "inverted.npy", SHAPE)
    Image.fromarray(255 - digits[1]).save(tmp_path / "one.png")
    with pytest.warns(InputWarning, match="inverted"):
        load_images(tmp_path / "one.png", SHAPE)
    np.save(tmp_path / "fine.npy", digits)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_images(tmp_path / "fine.npy", SHAPE)  # MNIST itself: no warning


def test_16_bit_png_is_scaled_not_clipped(tmp_path):
    deep = np.zeros((28, 28), dtype=np.uint16)
    deep[4:24, 12:16] = 30000
    deep[10, 10] = 65535
    Image.fromarray(deep).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    x = load_images(tmp_path / "deep.png", SHAPE).reshape(28, 28)
    assert x[5, 13] == pytest.approx(30000 / 65535, abs=1e-6)  # clipping would give 1.0
    assert x[10, 10] == pytest.approx(1.0) and x[0, 0] == 0.0


def test_unreadable_images_are_refused(tmp_path):
    (tmp_path / "fake.png").write_bytes(b"not an image at all")
    with pytest.raises(InputError, match="not an image Pillow can read"):
        load_images(tmp_path / "fake.png", SHAPE)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(InputError, match="expected a .npy array, an image file"):
        load_images(tmp_path / "x.txt", SHAPE)


def test_cli_warnings_are_one_line(mnist, digits, tmp_path):
    Image.fromarray(255 - digits[0]).resize((56, 56)).save(tmp_path / "d.png")
    done = subprocess.run(
        [sys.executable, "-m", "avb_zoo.cli", "encode", str(mnist), str(tmp_path / "d.png"), "--out", "z.npy"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=budget(120),
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        f"warning: {tmp_path / 'd.png'}: 56x56 resized to 28x28",
        f"warning: {tmp_path / 'd.png'}: 1 of 1 image(s) look inverted (white background; image 0); the models "
        "expect white digits on black: pass --invert (or use 1 - x, 255 - pixels)",
    ]
