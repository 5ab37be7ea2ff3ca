"""BDMC: forward AIS brackets log p(x) from below and reverse AIS from above, checked where log p(x) is exact.

The model is probabilistic PCA, z ~ N(0, I_d), x | z ~ N(W z + b, s^2 I_D), whose marginal N(b, W W^T + s^2 I)
gives log p(x) in closed form and whose posterior is Gaussian.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from toy_fixtures import single_thread, toy_vae_copy  # noqa: F401

from avb_zoo.evaluation.ais import AISSettings, Gaussian
from avb_zoo.evaluation.bdmc import bdmc, simulate_pairs
from avb_zoo.modelling.factory import load

LATENT, DATA, NOISE = 3, 12, 0.3
PAIRS = 64
SIGMAS = 3.0  # one-sided: a mean more than 3 standard errors on the wrong side has probability < 0.0014


class PPCA:
    """A fixed PPCA model with N simulated pairs (float64), its exact log p(x) and exact posterior."""

    def __init__(self, seed: int = 1, pairs: int = PAIRS) -> None:
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(DATA, LATENT, generator=g, dtype=torch.float64)
        self.b = 0.5 * torch.randn(DATA, generator=g, dtype=torch.float64)
        self.z = torch.randn(pairs, LATENT, generator=g, dtype=torch.float64)
        self.x = self.z @ self.w.T + self.b + NOISE * torch.randn(pairs, DATA, generator=g, dtype=torch.float64)
        cov = self.w @ self.w.T + NOISE**2 * torch.eye(DATA, dtype=torch.float64)
        self.exact = torch.distributions.MultivariateNormal(self.b, cov).log_prob(self.x)

    def log_likelihood(self, z: torch.Tensor) -> torch.Tensor:
        """log p(x_b | z_bk) for z [B, K, d]."""
        mean = z @ self.w.T + self.b
        u = (self.x.unsqueeze(1) - mean) / NOISE
        return (-0.5 * u.square() - math.log(NOISE) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def prior_start(self) -> Gaussian:
        zeros = torch.zeros(self.x.shape[0], LATENT, dtype=torch.float64)
        return Gaussian(zeros, torch.ones_like(zeros))

    def posterior(self) -> Gaussian:
        """p(z|x) is N(S W^T (x - b) / s^2, S) with S = (I + W^T W / s^2)^-1; here W^T W is made diagonal below."""
        precision = torch.eye(LATENT, dtype=torch.float64) + self.w.T @ self.w / NOISE**2
        cov = torch.linalg.inv(precision)
        mean = (self.x - self.b) @ self.w @ cov / NOISE**2
        return mean, cov


def se(values: torch.Tensor) -> float:
    return float(values.std(unbiased=True) / math.sqrt(values.numel()))


def test_ppca_bdmc_brackets_exact_log_likelihood_and_gap_shrinks() -> None:
    """On average lower <= exact <= upper (one-sided, 3 s.e.: E[log w] <= log p(x) <= E[-log w_rev] by Jensen),
    and 300 distributions give a smaller gap than 30 (by more than 3 s.e. of the paired difference)."""
    torch.set_num_threads(1)
    ppca = PPCA()
    indices = list(range(PAIRS))
    few = bdmc(ppca.log_likelihood, ppca.prior_start(), AISSettings(steps=30, chains=4), ppca.z, 0, indices)
    many = bdmc(ppca.log_likelihood, ppca.prior_start(), AISSettings(steps=300, chains=4), ppca.z, 0, indices)
    for result in (few, many):
        below, above = result.lower - ppca.exact, result.upper - ppca.exact
        assert float(below.mean()) <= SIGMAS * se(below), "forward AIS sits above the exact log p(x)"
        assert float(above.mean()) >= -SIGMAS * se(above), "reverse AIS sits below the exact log p(x)"
    shrink = few.gap - many.gap
    assert float(shrink.mean()) > SIGMAS * se(shrink), "the gap did not shrink with more distributions"
    assert float(many.gap.mean()) < float(few.gap.mean())


def test_bdmc_is_exact_when_the_start_is_the_posterior() -> None:
    """With q0 = p(z|x), log p(x, z) - log q0(z) = log p(x) at every z, so every increment is exact and both
    directions return log p(x) to rounding, whatever the kernels do (a check of the weights' signs and indices).
    The posterior covariance is full, so q0 (diagonal) must match it: use a W with orthogonal columns."""
    ppca = PPCA()
    q, _ = torch.linalg.qr(ppca.w)
    ppca.w = q * torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64)
    cov = ppca.w @ ppca.w.T + NOISE**2 * torch.eye(DATA, dtype=torch.float64)
    ppca.exact = torch.distributions.MultivariateNormal(ppca.b, cov).log_prob(ppca.x)
    mean, post_cov = ppca.posterior()
    assert torch.allclose(post_cov, torch.diag(torch.diagonal(post_cov)), atol=1e-12)
    q0 = Gaussian(mean, torch.diagonal(post_cov).sqrt().expand_as(mean).clone())
    result = bdmc(ppca.log_likelihood, q0, AISSettings(steps=7, chains=3), ppca.z, 0, list(range(PAIRS)))
    assert torch.allclose(result.lower, ppca.exact, atol=1e-9)
    assert torch.allclose(result.upper, ppca.exact, atol=1e-9)


def run(*args: str) -> tuple[int, str]:
    from avb_zoo.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


FAST = ["--ais-steps", "20", "--ais-chains", "2", "--iw-samples", "20", "--quiet"]


def test_eval_bdmc_writes_the_gap_with_its_protocol(toy_vae_copy: Path, single_thread) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST, "--bdmc", "6", "--batch-size", "4")
    assert code == 0, out
    metrics = json.loads((toy_vae_copy / "metrics.json").read_text())
    gap = metrics["log_likelihood_bdmc_gap"]
    record = metrics["bdmc"]
    assert record["pairs"] == 6 and math.isfinite(gap) and gap == pytest.approx(record["gap_mean"])
    assert gap == pytest.approx(record["upper_mean"] - record["lower_mean"])
    assert metrics["log_likelihood_bdmc_gap_spread_se"] > 0
    assert record["protocol"]["ais"]["steps"] == 20 and record["protocol"]["ais"]["chains"] == 2
    assert "BDMC gap" in out
    # keyed by (seed, pair index): another batching gives the same figures (to float32 rounding)
    code, out = run("eval", toy_vae_copy, *FAST, "--bdmc", "6", "--batch-size", "5", "--json", "--no-write")
    assert code == 0, out
    assert json.loads(out)["log_likelihood_bdmc_gap"] == pytest.approx(gap, rel=1e-5)


def test_simulated_pairs_are_binary_and_keyed(toy_vae_copy: Path) -> None:  # noqa: F811
    model = load(toy_vae_copy)
    x, z = simulate_pairs(model, [0, 1, 2], seed=3)
    x2, z2 = simulate_pairs(model, [2], seed=3)
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(x[2:], x2) and torch.equal(z[2:], z2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--bdmc", "0"], "--bdmc must be a positive number of simulated pairs, got 0"),
        (["--bdmc", "-3"], "--bdmc must be a positive number of simulated pairs, got -3"),
    ],
)
def test_bad_bdmc_count_is_one_line_and_writes_nothing(toy_vae_copy: Path, args: list[str], needle: str) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST, *args)
    assert code != 0
    assert out.strip() == f"error: {needle}"
    assert not (toy_vae_copy / "metrics.json").exists()


def test_bdmc_on_a_posterior_sampler_is_refused(tmp_path: Path) -> None:
    from test_eval import EIGHT_SCHOOLS, saved

    folder = saved(EIGHT_SCHOOLS, tmp_path / "es")
    code, out = run("eval", folder, "--bdmc", "4", "--quiet")
    assert code != 0
    assert len(out.strip().splitlines()) == 1
    assert "--bdmc needs a model with a likelihood p(x|z)" in out and "Eight Schools" in out
    assert not (folder / "metrics.json").exists()


def test_comparison_prints_gaps_beside_the_paired_difference(toy_vae_copy: Path, tmp_path: Path) -> None:  # noqa: F811
    """A model paired with itself (two evaluations, each with its BDMC gap): the comparison line and, under it,
    both gaps and the verdict; a gap measured at another protocol is refused."""
    import subprocess
    import sys

    journals, metrics = [], []
    for name in ("a", "b"):
        journal = tmp_path / f"journal-{name}"
        code, out = run("eval", toy_vae_copy, *FAST, "--bdmc", "4", "--resume-dir", journal)
        assert code == 0, out
        saved_metrics = tmp_path / f"metrics-{name}.json"
        saved_metrics.write_text((toy_vae_copy / "metrics.json").read_text())
        journals.append(journal)
        metrics.append(saved_metrics)
    script = Path(__file__).parents[1] / "benchmarks" / "mnist_vae_vs_avb.py"
    args = [sys.executable, str(script), "--pair", "same", *map(str, journals), "--gaps", "same", *map(str, metrics)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    gap = json.loads(metrics[0].read_text())["log_likelihood_bdmc_gap"]
    assert f"BDMC gap A {gap:.2f}" in done.stdout
    assert "the ranking is not established at this budget" in done.stdout  # a difference of 0 is within any gap
    other = json.loads(metrics[1].read_text())
    other["bdmc"]["protocol"]["ais"]["steps"] = 999
    metrics[1].write_text(json.dumps(other))
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    assert done.returncode != 0 and "the gap was measured with AIS steps 999, the pair uses 20" in done.stderr
