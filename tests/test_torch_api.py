"""The torch API meets people as the runtime does: inputs checked (dtype, range, shape) in one InputError, outputs
detached, a one-line repr, ``pull()`` saying where its files came from, ``train()`` printing report lines where
a bar would only fill a log, and a bar on the one call that takes long (the first moments estimate)."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

import avb_zoo
from avb_zoo.errors import InputError
from avb_zoo.modelling.model import AVBModel

SMALL_MNIST_AC = {
    "method": "avb-ac",
    "x_dim": 784,
    "latent_dim": 4,
    "image_shape": [1, 28, 28],
    "data": {"name": "mnist"},
    "encoder": {"name": "noise-basis", "eps_dim": 4, "n_basis": 3, "hidden": [16], "basis_hidden": [8]},
    "decoder": {"name": "bernoulli", "hidden": [16]},
    "adversary": {"name": "inner-product", "hidden": [16], "feature_dim": 8},
}


@pytest.fixture(scope="module")
def model() -> AVBModel:
    torch.manual_seed(0)
    return AVBModel(SMALL_MNIST_AC).eval()


def test_uint8_arrays_are_pixels_and_the_codes_are_detached(model: AVBModel) -> None:
    pixels = np.random.default_rng(0).integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    z = model.encode(pixels, torch.Generator().manual_seed(1))
    same = model.encode(torch.from_numpy(pixels).float().view(3, 784) / 255, torch.Generator().manual_seed(1))
    assert z.shape == (3, 4) and not z.requires_grad
    torch.testing.assert_close(z, same)
    mean, var = model.encoder_moments(pixels)
    assert not mean.requires_grad and not var.requires_grad
    assert not model.decode_logits(z).requires_grad


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (np.full((2, 784), 200.0, dtype=np.float32), "float images must lie in [0, 1] (0-255 pixels"),
        (np.zeros((2, 783), dtype=np.float32), "has shape [2, 783]; expected N x 784 or N x 1 x 28 x 28"),
        (np.zeros((2, 784), dtype=np.int64), "has dtype int64"),
        (np.array([[None] * 784], dtype=object), "has dtype object"),
        (torch.full((1, 784), float("nan")), "NaN or infinite"),
        (torch.zeros(1, 784, dtype=torch.int32), "has dtype torch.int32"),
    ],
    ids=["0-255 floats", "shape", "int64", "object", "nan", "int32 tensor"],
)
def test_bad_inputs_are_one_input_error(model: AVBModel, x, words: str) -> None:
    for call in (model.encode, model.encoder_moments):
        with pytest.raises(InputError) as caught:
            call(x)
        assert words in str(caught.value) and "\n" not in str(caught.value)


def test_repr_is_one_line(model: AVBModel) -> None:
    text = repr(model)
    assert "\n" not in text and text.startswith("AVBModel(") and "method='avb-ac'" in text


def test_pull_logs_where_the_files_came_from(caplog: pytest.LogCaptureFixture, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with caplog.at_level(logging.INFO, logger="avb_zoo"):
        folder = avb_zoo.pull("toy-avb")
    said = [r for r in caplog.records if "toy-avb-v1 from" in r.getMessage()]
    assert said and "shipped" in said[0].getMessage() and said[0].levelno == logging.WARNING
    assert (folder / "config.json").is_file()


def test_train_prints_report_lines_when_stderr_is_not_a_terminal(tmp_path: Path, capfd) -> None:
    avb_zoo.train("toy-avb", tmp_path / "run", max_steps=4, batch_size=8, report_every=2)
    err = capfd.readouterr().err
    assert "toy-avb-v1 step 2/4" in err and "toy-avb-v1 step 4/4" in err
    assert "\r" not in err  # no bar in a log


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_first_moments_estimate_shows_a_bar_on_a_terminal(monkeypatch) -> None:
    torch.manual_seed(1)
    fresh = AVBModel(SMALL_MNIST_AC).eval()
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    fresh.encoder_moments(torch.zeros(2, 784))
    assert "basis moments" in terminal.getvalue()
    shown = len(terminal.getvalue())
    fresh.encoder_moments(torch.zeros(2, 784))  # cached: nothing to wait for, nothing shown
    assert len(terminal.getvalue()) == shown
