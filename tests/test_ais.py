"""AIS against known truths: probabilistic PCA (closed-form log p(x)) and the toy's 2-D latent (quadrature)."""

from __future__ import annotations

import math

import pytest
import torch
from toy_fixtures import single_thread, trained_toy_vae  # noqa: F401

from avb_zoo.data.toy import TOY_POINTS
from avb_zoo.errors import EvaluationError
from avb_zoo.evaluation.ais import (
    AISSettings,
    AISState,
    Gaussian,
    KeyedNoise,
    beta_schedule,
    hmc_kernel,
    log_joint_and_grad,
    run_ais,
)
from avb_zoo.evaluation.metrics import ais_log_likelihood, model_log_likelihood
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood

F64 = torch.float64


class PPCA:
    """x = W z + b + s * noise, z ~ N(0, I): log p(x) = log N(x; b, W W^T + s^2 I) in closed form."""

    def __init__(self, latent: int, data: int, noise: float, n: int, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(data, latent, generator=g, dtype=F64)
        self.b = 0.5 * torch.randn(data, generator=g, dtype=F64)
        self.s = noise
        z = torch.randn(n, latent, generator=g, dtype=F64)
        self.x = z @ self.W.T + self.b + noise * torch.randn(n, data, generator=g, dtype=F64)

    def log_likelihood(self, x: torch.Tensor):
        """log p(x_b | z_bk) for z [B, K, d] -> [B, K]."""

        def fn(z: torch.Tensor) -> torch.Tensor:
            r = (x.unsqueeze(1) - z @ self.W.T - self.b) / self.s
            return (-0.5 * r.square() - math.log(self.s) - 0.5 * math.log(2 * math.pi)).sum(-1)

        return fn

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        cov = self.W @ self.W.T + self.s**2 * torch.eye(self.W.shape[0], dtype=F64)
        return torch.distributions.MultivariateNormal(self.b, cov).log_prob(x)

    def posterior(self, x: torch.Tensor) -> Gaussian:
        d = self.W.shape[1]
        cov = torch.linalg.inv(torch.eye(d, dtype=F64) + self.W.T @ self.W / self.s**2)
        mean = (x - self.b) @ self.W @ cov / self.s**2
        return Gaussian(mean, cov.diagonal().sqrt().expand_as(mean).clone())


def prior(n: int, d: int) -> Gaussian:
    return Gaussian(torch.zeros(n, d, dtype=F64), torch.ones(n, d, dtype=F64))


def test_ppca_from_the_prior_matches_closed_form() -> None:
    # 128 examples, posterior std ~0.3 (a 3-fold narrowing of the prior in each of 3 dimensions).
    # Over seeds, the mean error at 200 steps x 8 chains has a spread of ~0.025 nats and a bias below that
    # (1000 steps converge to 0.00x), so 0.1 is 4 standard deviations: a wrong AIS (a missing Jacobian,
    # a wrong weight increment, a broken Metropolis test) misses by far more.
    ppca = PPCA(latent=3, data=10, noise=1.0, n=128)
    settings = AISSettings(steps=200, chains=8, step_size=0.1)
    result = run_ais(ppca.log_likelihood(ppca.x), prior(128, 3), settings, seed=0, example_indices=range(128))
    error = (result.log_likelihood - ppca.log_marginal(ppca.x)).mean().item()
    assert abs(error) < 0.1, error
    assert 0.6 <= result.acceptance.mean().item() <= 0.75  # the adaptation holds the acceptance near [0.6, 0.7]


def test_ppca_from_a_close_gaussian_is_exact_quickly() -> None:
    # q0 near the posterior (shifted by 0.2 sd, 1.5 x too wide), as a VAE encoder would give: 30 steps suffice.
    # With an exact q0 every weight would equal log p(x); here per-example errors are ~0.02, mean < 0.01.
    ppca = PPCA(latent=3, data=10, noise=1.0, n=64, seed=1)
    post = ppca.posterior(ppca.x)
    q0 = Gaussian(post.mean + 0.2 * post.std, 1.5 * post.std)
    result = run_ais(ppca.log_likelihood(ppca.x), q0, AISSettings(steps=30, chains=8, step_size=0.5), 3, range(64))
    error = result.log_likelihood - ppca.log_marginal(ppca.x)
    assert abs(error.mean().item()) < 0.05, error.mean().item()


def test_monte_carlo_se_measures_the_chains_disagreement() -> None:
    # One step from the exact posterior (1-D latent, so the diagonal Gaussian is exact): every chain's weight
    # is p(x), so the estimator has no noise.
    ppca = PPCA(latent=1, data=5, noise=1.0, n=4, seed=5)
    post, ll = ppca.posterior(ppca.x), ppca.log_likelihood(ppca.x)
    exact = run_ais(ll, post, AISSettings(steps=1, chains=8), 0, range(4))
    assert exact.monte_carlo_se.max().item() < 1e-6
    torch.testing.assert_close(exact.log_likelihood, ppca.log_marginal(ppca.x))
    # From the prior (importance sampling with 8 draws) the chains disagree and the noise shows.
    rough = run_ais(ll, prior(4, 1), AISSettings(steps=1, chains=8), 0, range(4))
    assert (rough.monte_carlo_se > 0.05).all()
    assert run_ais(ll, prior(4, 1), AISSettings(steps=1, chains=1), 0, range(4)).monte_carlo_se.isnan().all()


def test_more_steps_do_not_lower_the_estimate() -> None:
    # A harder PPCA (posterior std ~0.1): AIS is a stochastic lower bound whose bias shrinks with steps, so
    # the paired difference (more - fewer) must not be negative beyond its standard error.
    ppca = PPCA(latent=3, data=10, noise=0.5, n=64, seed=2)
    q0, ll = prior(64, 3), ppca.log_likelihood(ppca.x)
    fewer = run_ais(ll, q0, AISSettings(steps=30, chains=4, step_size=0.1), 0, range(64)).log_likelihood
    more = run_ais(ll, q0, AISSettings(steps=150, chains=4, step_size=0.1), 0, range(64)).log_likelihood
    diff = more - fewer
    se = diff.std().item() / math.sqrt(diff.numel())
    assert diff.mean().item() > -se, (diff.mean().item(), se)
    truth = ppca.log_marginal(ppca.x).mean().item()
    assert abs(more.mean().item() - truth) < abs(fewer.mean().item() - truth)


def test_deterministic_and_independent_of_batch_size() -> None:
    ppca = PPCA(latent=2, data=6, noise=1.0, n=6, seed=3)
    settings = AISSettings(steps=20, chains=3, step_size=0.1)

    def estimate(rows: list[int], seed: int = 7) -> torch.Tensor:
        x = ppca.x[rows]
        return run_ais(ppca.log_likelihood(x), prior(len(rows), 2), settings, seed, rows).log_likelihood

    whole = estimate(list(range(6)))
    torch.testing.assert_close(whole, estimate(list(range(6))), rtol=0, atol=0)
    parts = torch.cat([estimate([0, 1]), estimate([2]), estimate([3, 4, 5])])
    torch.testing.assert_close(parts, whole, rtol=1e-9, atol=1e-9)
    reordered = estimate([5, 4, 3, 2, 1, 0])
    torch.testing.assert_close(reordered.flip(0), whole, rtol=1e-9, atol=1e-9)
    assert not torch.allclose(estimate(list(range(6)), seed=8), whole)


def test_keyed_noise_depends_on_the_example_not_the_batch() -> None:
    a = KeyedNoise(0, [3, 9], chains=2, dim=4, transitions=100, device="cpu", dtype=F64)
    b = KeyedNoise(0, [9], chains=2, dim=4, transitions=100, device="cpu", dtype=F64)
    torch.testing.assert_close(a.initial()[1], b.initial()[0])
    for t in (0, 63, 64, 99):  # across a block boundary
        torch.testing.assert_close(a.step(t).momentum[1], b.step(t).momentum[0])
        torch.testing.assert_close(a.step(t).uniform[1], b.step(t).uniform[0])


def test_hmc_kernel_keeps_its_target_invariant() -> None:
    # At beta = 1 the kernel targets p(z|x). Started from exact posterior draws, 2000 chains after 10
    # transitions must still have the posterior's mean and std: sampling error of a mean is ~std/45, of a
    # std ~std/63, so tolerances of 0.1 std catch a biased integrator or acceptance rule.
    ppca = PPCA(latent=2, data=5, noise=1.0, n=1, seed=4)
    post = ppca.posterior(ppca.x)
    chains = 2000
    g = torch.Generator().manual_seed(0)
    z = post.mean.unsqueeze(1) + post.std.unsqueeze(1) * torch.randn(1, chains, 2, generator=g, dtype=F64)
    ll = ppca.log_likelihood(ppca.x)
    lj, grad = log_joint_and_grad(ll, z)
    zeros = torch.zeros(1, chains, dtype=F64)
    state = AISState(z, lj, grad, zeros, torch.full((1,), 0.3, dtype=F64))
    q0 = post  # at beta = 1, q0 only sets the per-dimension step scale (eps * posterior std)
    for t in range(10):
        noise = KeyedNoise(t, [0], chains, 2, 1, "cpu", F64).step(0)
        state, info = hmc_kernel(noise, state, q0, 1.0, ll, leapfrog_steps=10)
    assert 0.3 < info.accepted.double().mean().item() < 1.0
    z = state.z[0]
    sd = post.std[0]
    assert ((z.mean(0) - post.mean[0]).abs() / sd).max() < 0.1
    assert ((z.std(0) - sd).abs() / sd).max() < 0.1


def test_toy_ais_matches_quadrature(trained_toy_vae) -> None:  # noqa: F811
    # The briefly trained toy VAE's decoder: AIS from the encoder's Gaussian (the VAE protocol) and from
    # the prior (plain AVB's). With 128 chains x 100 steps the per-point error has a spread ~0.01 over
    # seeds (measured), so the mean of the four is within 0.02 of quadrature (exact to 1e-6 here).
    model = trained_toy_vae
    exact = quadrature_log_likelihood(model, TOY_POINTS)
    settings = AISSettings(steps=100, chains=128, step_size=0.5)
    via_encoder = ais_log_likelihood(model, TOY_POINTS, [0, 1, 2, 3], settings, seed=0).log_likelihood
    assert abs((via_encoder - exact).mean().item()) < 0.02
    q0 = Gaussian(torch.zeros(4, 2), torch.ones(4, 2))
    via_prior = run_ais(model_log_likelihood(model, TOY_POINTS), q0, settings, 0, range(4)).log_likelihood
    assert abs((via_prior - exact).mean().item()) < 0.02


def test_beta_schedules() -> None:
    for kind in ("linear", "sigmoid"):
        beta = beta_schedule(50, kind)
        assert beta[0] == 0 and beta[-1] == 1 and (beta.diff() > 0).all()
    assert torch.allclose(beta_schedule(4), torch.tensor([0, 0.25, 0.5, 0.75, 1], dtype=F64))


@pytest.mark.parametrize(
    ("change", "word"),
    [
        ({"chains": 0}, "chains"),
        ({"steps": -1}, "steps"),
        ({"leapfrog_steps": 0}, "leapfrog"),
        ({"step_size": float("nan")}, "step size"),
        ({"step_size": -0.1}, "step size"),
        ({"schedule": "cosine"}, "schedule"),
        ({"target_acceptance": (0.8, 0.6)}, "acceptance"),
    ],
)
def test_settings_out_of_range_are_named(change: dict, word: str) -> None:
    with pytest.raises(EvaluationError, match=word):
        AISSettings(**change).validate()


def test_non_finite_start_is_an_error() -> None:
    ppca = PPCA(latent=2, data=4, noise=1.0, n=2)
    q0 = Gaussian(torch.full((2, 2), float("nan"), dtype=F64), torch.ones(2, 2, dtype=F64))
    with pytest.raises(EvaluationError, match="non-finite"):
        run_ais(ppca.log_likelihood(ppca.x), q0, AISSettings(steps=2, chains=1), 0, range(2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    # Same keyed noise on both devices; float64 keeps rounding differences from flipping accept decisions.
    ppca = PPCA(latent=3, data=10, noise=1.0, n=16)
    settings = AISSettings(steps=50, chains=4, step_size=0.1)
    cpu = run_ais(ppca.log_likelihood(ppca.x), prior(16, 3), settings, 0, range(16)).log_likelihood
    ppca.W, ppca.b = ppca.W.cuda(), ppca.b.cuda()
    x = ppca.x.cuda()
    q0 = Gaussian(*(t.cuda() for t in prior(16, 3)))
    gpu = run_ais(ppca.log_likelihood(x), q0, settings, 0, range(16)).log_likelihood
    torch.testing.assert_close(gpu, cpu, rtol=1e-6, atol=1e-6)
