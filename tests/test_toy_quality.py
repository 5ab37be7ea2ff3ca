"""The toy recipes reach the paper's log-likelihoods: exact log p(x) by quadrature over the 2-D latent.

The optimum is -log 4 = -1.386 nats (four equally likely points). The paper reports about -1.57 for AVB and
-1.61 for the VAE. The AVB recipe must reach -1.45, which only a posterior more flexible than a Gaussian
allows. The VAE's own optimum on this problem is near -1.57 (its Gaussian posteriors overlap, so the decoder
stays soft between them: -1.571, -1.570 and -1.5705 after 2000, 20000 and 6000 large-batch steps); its test
guards the paper's VAE figure.

The AVB run (6,000 steps, about 3.5 minutes on 2 cores) is marked slow: `python -m pytest -m slow` runs it.
The shipped toy-avb-v1, trained by the same recipe, is checked on every run by tests/test_shipped_models.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from budget import budget

from avb_zoo.data.toy import TOY_POINTS
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood
from avb_zoo.modelling.factory import load


def train_with_command(recipe: str, out: Path) -> None:
    cmd = [sys.executable, "-m", "avb_zoo.cli", "train", recipe, "--device", "cpu", "--out", str(out), "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=budget(900))
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_toy_avb_reaches_minus_1_45(tmp_path: Path) -> None:
    train_with_command("toy-avb", tmp_path / "run")
    log_px = quadrature_log_likelihood(load(tmp_path / "run"), TOY_POINTS)
    print(f"toy-avb exact log p(x) per point {log_px.tolist()}, mean {log_px.mean():.4f}")
    assert log_px.mean() >= -1.45


def test_toy_vae_reaches_the_papers_vae(tmp_path: Path) -> None:
    train_with_command("toy-vae", tmp_path / "run")
    log_px = quadrature_log_likelihood(load(tmp_path / "run"), TOY_POINTS)
    print(f"toy-vae exact log p(x) per point {log_px.tolist()}, mean {log_px.mean():.4f}")
    assert log_px.mean() >= -1.61
