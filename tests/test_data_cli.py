"""``avb-zoo data download`` and ``avb-zoo data digits`` (issue 17 item 4), against a local mirror."""

from __future__ import annotations

import os

import numpy as np
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from mnist_mirror import SUBSET, serve, subset_as_mnist
from PIL import Image

from avb_zoo.data import mnist


def run_cli(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def one_line_error(done) -> str:
    assert done.exit_code == 1, done.output
    assert done.output.startswith("error: ") and done.output.count("\n") == 1, done.output
    return done.output


def test_download_fetches_and_checks_every_file(tmp_path, monkeypatch):
    subset_as_mnist(monkeypatch)
    root = tmp_path / "mnist"
    with serve(SUBSET) as url:
        done = run_cli("data", "download", "mnist", "--dir", root, "--mirror", url)
        assert done.exit_code == 0, done.output
        assert sorted(os.listdir(root)) == sorted(mnist.MNIST_MD5)  # all four, no temp files
        assert f"4 files in {root}, md5-checked" in done.output
        (root / mnist.TEST_LABELS).unlink()
        done = run_cli("data", "download", "mnist", "--dir", root, env={mnist.MIRROR_ENV_VAR: url})  # by env
        assert done.exit_code == 0, done.output
    assert mnist.verify_mnist(root) == list(mnist.MNIST_MD5)


def test_download_keeps_nothing_that_fails_its_md5(tmp_path, monkeypatch):
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(var, raising=False)
    with serve(SUBSET) as url:  # the subset is not the published MNIST: every file fails the real md5
        msg = one_line_error(run_cli("data", "download", "mnist", "--dir", tmp_path / "m", "--mirror", url))
    assert "md5" in msg and "nothing was kept" in msg
    assert not (tmp_path / "m").exists()  # nothing kept, not even the folder it made


def test_missing_data_names_the_command(tmp_path):
    msg = one_line_error(run_cli("data", "digits", "-n", "2", "--out", tmp_path / "d.npy", "--dir", tmp_path / "no"))
    assert f"avb-zoo data download mnist --dir {tmp_path / 'no'}" in msg
    assert "download=True" not in msg


def test_digits_as_array_and_images(tmp_path):
    done = run_cli("data", "digits", "--split", "test", "-n", "16", "--out", tmp_path / "digits.npy", "--dir", SUBSET)
    assert done.exit_code == 0, done.output
    x = np.load(tmp_path / "digits.npy")
    expected = mnist.load_mnist(SUBSET, "test")[:16].numpy().reshape(16, 28, 28)
    assert x.dtype == np.uint8 and x.shape == (16, 28, 28)
    np.testing.assert_array_equal(x, expected)
    args = ["data", "digits", "-n", "3", "--start", "5", "--out", tmp_path / "pngs", "--labels", tmp_path / "y.npy"]
    done = run_cli(*args, "--dir", SUBSET)
    assert done.exit_code == 0, done.output
    files = sorted(os.listdir(tmp_path / "pngs"))
    assert files == ["test-00005.png", "test-00006.png", "test-00007.png"]
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "pngs" / files[0])), expected[5])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), mnist.load_mnist_labels(SUBSET, "test")[5:8].numpy())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "16", "--start", "490"], "holds 500 images; -n 16 from --start 490 would need 506"),
        (["-n", "501"], "holds 500 images"),
        (["--split", "valid", "-n", "51"], "valid split"),
        (["--format", "xyz"], "not an image format Pillow writes"),
        (["--labels", "labels.txt"], "must end in .npy"),
    ],
)
def test_bad_digit_requests_fail_in_one_line_and_write_nothing(tmp_path, args, message):
    out = tmp_path / ("digits.npy" if "--format" not in args else "folder")
    msg = one_line_error(run_cli("data", "digits", "--out", out, "--dir", SUBSET, *args))
    assert message in msg
    assert os.listdir(tmp_path) == []


def test_bundled_digits_are_the_test_splits_first_64(tmp_path):
    done = run_cli(
        "data", "digits", "--bundled", "-n", "64", "--out", tmp_path / "b.npy", "--labels", tmp_path / "y.npy"
    )
    assert done.exit_code == 0, done.output
    expected = mnist.load_mnist(SUBSET, "test")[:64].numpy().reshape(64, 28, 28)
    np.testing.assert_array_equal(np.load(tmp_path / "b.npy"), expected)
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), mnist.load_mnist_labels(SUBSET, "test")[:64].numpy())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-n", "16", "--start", "60"], "ships the test split's first 64 digits; -n 16 from --start 60 would need 76"),
        (["--split", "train"], "neither --split nor --dir"),
    ],
)
def test_bad_bundled_requests_fail_in_one_line(tmp_path, args, message):
    msg = one_line_error(run_cli("data", "digits", "--bundled", "--out", tmp_path / "d.npy", *args))
    assert message in msg
    assert os.listdir(tmp_path) == []
