"""A posterior sampler (no input x: Eight Schools) exports eps -> z, and `avb-zoo sample --npy` writes its draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from avb_zoo.cli import main
from click.testing import CliRunner
from onnx_models import exported

from avb_zoo.modelling.factory import load
from avb_zoo.runtime import PosteriorSampler, Sampler, open_sampler

ATOL = 1e-4  # float32 graph against the float32 module: rounding only


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return exported(tmp_path_factory, "eight-schools")


def test_export_writes_the_posterior_graph_and_skips_the_image_graphs(folder):
    report = json.loads((folder / "onnx" / "verification.json").read_text())
    assert report["passed"] and set(report["graphs"]) == {"posterior"}
    assert not (folder / "onnx" / "encoder.onnx").exists() and not (folder / "onnx" / "sampler.onnx").exists()


def test_posterior_draws_equal_the_torch_sampler_for_the_same_noise(folder):
    sampler = open_sampler(folder)
    assert isinstance(sampler, PosteriorSampler)
    assert sampler.parameter_names == ("mu", "tau", *(f"eta_{j}" for j in range(1, 9)))
    draws = sampler.draw(301, seed=7, batch_size=100)
    assert draws.shape == (301, 10) and draws.dtype == np.float32
    eps = sampler.noise(301, seed=7)
    model = load(folder)
    with torch.no_grad():
        expected = model.encode(torch.zeros(301, 0), eps=torch.from_numpy(eps)).numpy()
    np.testing.assert_allclose(draws, expected, rtol=0, atol=ATOL)
    assert draws.std(0).min() > 1e-3  # the draws depend on the noise
    np.testing.assert_array_equal(sampler.draw(301, seed=7), draws)  # the seed, not the batch size, fixes them


def test_sample_command_writes_draws_and_refuses_an_image(folder, tmp_path):
    out = tmp_path / "draws.npy"
    result = CliRunner().invoke(main, ["sample", str(folder), "-n", "50", "--npy", str(out), "--seed", "3"])
    assert result.exit_code == 0, result.output
    assert "(mu, tau, eta_1" in result.output
    np.testing.assert_array_equal(np.load(out), PosteriorSampler(folder).draw(50, seed=3))
    png = tmp_path / "grid.png"
    result = CliRunner().invoke(main, ["sample", str(folder), "-n", "4", "--out", str(png)])
    assert result.exit_code != 0 and "posterior sampler" in result.output and "--npy" in result.output
    assert not png.exists()


def test_image_models_still_open_a_sampler(tmp_path_factory):
    assert type(open_sampler(exported(tmp_path_factory, "toy"))) is Sampler


def test_sample_needs_somewhere_to_write(tmp_path_factory):
    result = CliRunner().invoke(main, ["sample", str(exported(tmp_path_factory, "toy")), "-n", "4"])
    assert result.exit_code != 0 and "--out" in result.output and "--npy" in result.output
