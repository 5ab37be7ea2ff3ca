"""Bias of single-chain AIS against exact log p(x): step sizes frozen from a pilot vs adapted in the run.

    python benchmarks/ais_bias.py [--runs 4000] [--steps 50] [--target ppca toy] [--seed 0]

One x, many independent runs at K = 1 chain (the runs are example indices 0..runs-1 of the same x: AIS
keys its randomness by example index). For each estimator the table gives, relative to the exact log Z
(closed form for probabilistic PCA, quadrature for the shipped toy-avb model, whose q0 is the prior):

* log mean w - log Z, with its delta-method standard error sd(w) / (mean(w) sqrt(runs)). An estimator
  with E[w] = Z sits within a few standard errors of 0.
* mean log w - log Z with its standard error: a valid AIS stays below 0 (Jensen), by about Var(log w) / 2.

"frozen" is run_ais (pilot on its own noise, step sizes frozen during the estimate). "in-run" rebuilds,
from the same kernels, the estimator that adapts each example's step size from its own chain's acceptance
during the estimate: its kernels depend on the chain's history, and E[w] = Z no longer holds.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from avb_zoo.evaluation.ais import (
    AISSettings,
    Gaussian,
    KeyedNoise,
    adapt_step_size,
    anneal,
    beta_schedule,
    hmc_kernel,
    init,
    run_ais,
)
from avb_zoo.evaluation.metrics import model_log_likelihood
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood

F64 = torch.float64
TOY = Path(__file__).resolve().parents[1] / "models" / "toy-avb"


def ppca_target(data: int = 10, latent: int = 3, near: bool = False, seed: int = 0):
    """(log-likelihood of x [1, data] under PPCA with noise 1, q0, exact log Z). q0 is the prior, or with
    ``near`` a Gaussian near the posterior (mean shifted by 0.2 sd, 1.5 times too wide), as an encoder gives."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(data, latent, generator=g, dtype=F64)
    b = 0.5 * torch.randn(data, generator=g, dtype=F64)
    x = torch.randn(1, latent, generator=g, dtype=F64) @ w.T + b + torch.randn(1, data, generator=g, dtype=F64)
    cov = w @ w.T + torch.eye(data, dtype=F64)
    exact = torch.distributions.MultivariateNormal(b, cov).log_prob(x[0]).item()
    post_cov = torch.linalg.inv(torch.eye(latent, dtype=F64) + w.T @ w)
    post_mean = (x - b) @ w @ post_cov
    post_sd = post_cov.diagonal().sqrt().unsqueeze(0)

    def make(runs: int):
        xs = x.expand(runs, -1)

        def log_likelihood(z: torch.Tensor) -> torch.Tensor:
            r = xs.unsqueeze(1) - z @ w.T - b
            return (-0.5 * r.square() - 0.5 * math.log(2 * math.pi)).sum(-1)

        if near:
            return log_likelihood, Gaussian(
                (post_mean + 0.2 * post_sd).expand(runs, -1), 1.5 * post_sd.expand(runs, -1)
            )
        return log_likelihood, Gaussian(torch.zeros(runs, latent, dtype=F64), torch.ones(runs, latent, dtype=F64))

    return make, exact


def toy_target(point: int = 0, near: bool = False):
    from avb_zoo.data.toy import TOY_POINTS
    from avb_zoo.modelling.factory import load

    model = load(TOY).double().eval()
    x = TOY_POINTS[point : point + 1].double()
    exact = quadrature_log_likelihood(model, x).item()
    mean, sd = torch.zeros(1, 2, dtype=F64), torch.ones(1, 2, dtype=F64)
    if near:
        mean, sd = posterior_moments(model, x)

    def make(runs: int):
        return model_log_likelihood(model, x.expand(runs, -1)), Gaussian(mean.expand(runs, -1), sd.expand(runs, -1))

    return make, exact


@torch.no_grad()
def posterior_moments(model, x: torch.Tensor, half_width: float = 7.0, points: int = 401):
    """Mean and sd [1, 2] of p(z|x) on the quadrature grid (a Gaussian q0 an ideal encoder would give)."""
    from avb_zoo.evaluation.quadrature import latent_grid

    grid, _ = latent_grid(2, half_width, points)
    log_p = -model.nll(x.expand(grid.shape[0], -1), grid).double() - 0.5 * grid.square().sum(1)
    p = torch.softmax(log_p, 0).unsqueeze(1)
    mean = (p * grid).sum(0)
    sd = (p * (grid - mean).square()).sum(0).sqrt()
    return mean.unsqueeze(0), sd.unsqueeze(0)


@torch.no_grad()
def in_run_adaptation(log_likelihood, q0: Gaussian, settings: AISSettings, seed: int, indices) -> torch.Tensor:
    """Log weights [B, K] of AIS whose step size adapts to the estimate's own acceptance (not valid AIS)."""
    batch, dim = q0.mean.shape
    betas = beta_schedule(settings.steps, settings.schedule).tolist()
    noise = KeyedNoise(seed, indices, settings.chains, dim, settings.steps - 1, "cpu", q0.mean.dtype)
    state = init(q0, log_likelihood, noise.initial(), settings.step_size)
    for t in range(settings.steps):
        state = anneal(state, q0, betas[t], betas[t + 1])
        if t == settings.steps - 1:
            break
        state, info = hmc_kernel(noise.step(t), state, q0, betas[t + 1], log_likelihood, settings.leapfrog_steps)
        state = state._replace(step_size=adapt_step_size(state.step_size, info.acceptance, settings))
    return state.log_weight.double()


def pooled(log_w: torch.Tensor, exact: float) -> dict[str, float]:
    """log mean w and mean log w over runs, minus log Z, with their standard errors."""
    log_w = log_w.flatten().double()
    n = log_w.numel()
    w = torch.exp(log_w - log_w.max())
    log_mean = (torch.logsumexp(log_w, 0) - math.log(n)).item()
    return {
        "log_mean_w": log_mean - exact,
        "log_mean_w_se": (w.std() / (w.mean() * math.sqrt(n))).item(),
        "mean_log_w": log_w.mean().item() - exact,
        "mean_log_w_se": (log_w.std() / math.sqrt(n)).item(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--step-size", type=float, default=0.01)
    parser.add_argument("--target", nargs="+", default=["ppca", "toy"], choices=["ppca", "toy"])
    parser.add_argument("--seed", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ppca", type=int, nargs=2, default=[10, 3], metavar=("DATA", "LATENT"))
    parser.add_argument("--near", action="store_true", help="q0 near the posterior, not the prior")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{'target':<6}{'estimator':<9}{'seed':>5}{'log mean w - log Z':>22}{'mean log w - log Z':>22}{'s':>7}")
    for name in args.target:
        make, exact = ppca_target(*args.ppca, near=args.near) if name == "ppca" else toy_target(near=args.near)
        log_likelihood, q0 = make(args.runs)
        settings = AISSettings(steps=args.steps, chains=1, step_size=args.step_size)
        indices = list(range(args.runs))
        for seed in args.seed:
            for estimator in ("frozen", "in-run"):
                start = time.perf_counter()
                if estimator == "frozen":
                    log_w = run_ais(log_likelihood, q0, settings, seed, indices).log_weights
                else:
                    log_w = in_run_adaptation(log_likelihood, q0, settings, seed, indices)
                s = pooled(log_w, exact)
                lm = f"{s['log_mean_w']:+.4f} ± {s['log_mean_w_se']:.4f}"
                ml = f"{s['mean_log_w']:+.4f} ± {s['mean_log_w_se']:.4f}"
                print(f"{name:<6}{estimator:<9}{seed:>5}{lm:>22}{ml:>22}{time.perf_counter() - start:>7.1f}")


if __name__ == "__main__":
    main()
