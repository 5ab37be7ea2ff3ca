"""Shared fixtures of the evaluation tests: one briefly trained toy VAE per test process, one thread."""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from avb_zoo.modelling.factory import load
from avb_zoo.modelling.model import AVBModel
from avb_zoo.training.trainer import train

TOY_STEPS = 1000  # enough for a decoder that separates the four points (log p(x) ~ -1.6; the optimum is -1.386)


@functools.cache
def toy_vae_folder() -> Path:
    """A toy-vae run of TOY_STEPS steps with batch 64, trained once per process (deterministic under seed 0)."""
    out = Path(tempfile.mkdtemp(prefix="avb-zoo-toy-vae-"))
    atexit.register(shutil.rmtree, out, True)
    train("toy-vae", out, max_steps=TOY_STEPS, batch_size=64, seed=0, progress=False)
    return out


@pytest.fixture(autouse=True)
def single_thread():
    """Tiny tensors: extra threads only add synchronisation (and stall badly on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def trained_toy_vae() -> AVBModel:
    return load(toy_vae_folder())


@pytest.fixture
def toy_vae_copy(tmp_path: Path) -> Path:
    """A private copy of the trained folder (tests may write metrics.json or break files in it)."""
    dest = tmp_path / "toy-vae"
    shutil.copytree(toy_vae_folder(), dest)
    return dest
