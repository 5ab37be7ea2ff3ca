"""AIS against known truths: probabilistic PCA (closed-form log p(x)) and the toy's 2-D latent (quadrature)."""

from __future__ import annotations

import math
from pathlib import Path

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
    interpolate_step_sizes,
    log_joint_and_grad,
    pilot_step_sizes,
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
    assert 0.55 <= result.acceptance.mean().item() <= 0.8  # the pilot's step sizes hold it near [0.6, 0.7]


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
    one_step = AISSettings(steps=1, chains=8, adapt_step_size=False)  # importance sampling from q0
    exact = run_ais(ll, post, one_step, 0, range(4))
    assert exact.monte_carlo_se.max().item() < 1e-6
    torch.testing.assert_close(exact.log_likelihood, ppca.log_marginal(ppca.x))
    # From the prior (importance sampling with 8 draws) the chains disagree and the noise shows.
    rough = run_ais(ll, prior(4, 1), one_step, 0, range(4))
    assert (rough.monte_carlo_se > 0.05).all()
    single = AISSettings(steps=1, chains=1, adapt_step_size=False)
    assert run_ais(ll, prior(4, 1), single, 0, range(4)).monte_carlo_se.isnan().all()


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


def test_step_sizes_come_from_the_pilot_not_the_estimate() -> None:
    # The schedule is fixed before the estimate's chains start: it is what pilot_step_sizes gives, and it
    # does not change with the estimate's chain count (so not with the estimate's noise either).
    ppca = PPCA(latent=2, data=6, noise=1.0, n=5, seed=3)
    ll, q0 = ppca.log_likelihood(ppca.x), prior(5, 2)
    settings = AISSettings(steps=40, chains=3, step_size=0.1)
    result = run_ais(ll, q0, settings, 7, range(5))
    schedule = pilot_step_sizes(ll, q0, settings, 7, range(5))
    assert schedule.shape == (5, 39)
    torch.testing.assert_close(result.step_sizes, schedule, rtol=0, atol=0)
    torch.testing.assert_close(result.step_size, schedule[:, -1], rtol=0, atol=0)
    more_chains = run_ais(ll, q0, AISSettings(steps=40, chains=9, step_size=0.1), 7, range(5))
    torch.testing.assert_close(more_chains.step_sizes, schedule, rtol=0, atol=0)
    assert (schedule.std(1) > 0).all()  # the pilot did adapt
    fixed = run_ais(ll, q0, AISSettings(steps=40, chains=3, step_size=0.1, adapt_step_size=False), 7, range(5))
    assert (fixed.step_sizes == 0.1).all()


def test_pilot_noise_is_its_own_stream() -> None:
    estimate = KeyedNoise(0, [2], chains=1, dim=3, transitions=5, device="cpu", dtype=F64)
    pilot = KeyedNoise(0, [2], chains=1, dim=3, transitions=5, device="cpu", dtype=F64, stream="ais-pilot")
    assert not torch.allclose(estimate.initial(), pilot.initial())
    assert not torch.allclose(estimate.step(0).momentum, pilot.step(0).momentum)


def test_a_shorter_pilot_is_interpolated_onto_the_run() -> None:
    ppca = PPCA(latent=2, data=6, noise=1.0, n=3, seed=3)
    ll, q0 = ppca.log_likelihood(ppca.x), prior(3, 2)
    coarse = pilot_step_sizes(ll, q0, AISSettings(steps=20, step_size=0.1), 0, range(3))
    fine = pilot_step_sizes(ll, q0, AISSettings(steps=80, pilot_steps=20, step_size=0.1), 0, range(3))
    assert fine.shape == (3, 79)
    # pilot distributions 1..19 sit at betas k/20 = 4k/80: the run's transitions 4k - 1 read them exactly
    torch.testing.assert_close(fine[:, 3::4][:, :19], coarse, rtol=1e-12, atol=0)
    assert (fine[:, -1] == coarse[:, -1]).all()  # beyond the pilot's last beta: its last eps
    # in between, log eps is linear in beta
    beta = torch.tensor([0.0, 1.0], dtype=F64)
    eps = torch.tensor([[1.0, 4.0]], dtype=F64)
    mid = interpolate_step_sizes(beta, eps, torch.tensor([-1.0, 0.5, 2.0], dtype=F64))
    torch.testing.assert_close(mid, torch.tensor([[1.0, 2.0, 4.0]], dtype=F64))


def pooled(log_w: torch.Tensor, exact: float) -> tuple[float, float, float, float]:
    """(log mean w - exact, its delta-method s.e., mean log w - exact, its s.e.) over all runs' weights."""
    log_w = log_w.flatten().double()
    n = log_w.numel()
    w = torch.exp(log_w - log_w.max())
    log_mean = (torch.logsumexp(log_w, 0) - math.log(n)).item() - exact
    return (
        log_mean,
        (w.std() / (w.mean() * math.sqrt(n))).item(),
        log_w.mean().item() - exact,
        log_w.std().item() / math.sqrt(n),
    )


@torch.no_grad()
def adapting_in_run(ll, q0: Gaussian, settings: AISSettings, seed: int, indices) -> torch.Tensor:
    """Log weights of AIS whose step size adapts to the estimate's own acceptance (not a valid AIS)."""
    from avb_zoo.evaluation.ais import adapt_step_size, anneal, init

    betas = beta_schedule(settings.steps).tolist()
    noise = KeyedNoise(seed, indices, settings.chains, q0.mean.shape[1], settings.steps - 1, "cpu", q0.mean.dtype)
    state = init(q0, ll, noise.initial(), settings.step_size)
    for t in range(settings.steps):
        state = anneal(state, q0, betas[t], betas[t + 1])
        if t < settings.steps - 1:
            state, info = hmc_kernel(noise.step(t), state, q0, betas[t + 1], ll, settings.leapfrog_steps)
            state = state._replace(step_size=adapt_step_size(state.step_size, info.acceptance, settings))
    return state.log_weight


PPCA_RUNS = 6000


@pytest.mark.parametrize("estimator", ["frozen", "adapting in the run"])
def test_single_chain_ais_is_unbiased_on_ppca(estimator: str) -> None:
    """One chain, pooled over 6000 independent runs, against the closed-form log p(x).

    One x of a 2-D PPCA (4 observed dimensions, noise 1), q0 near the posterior (mean 0.2 sd off, 1.5 times
    too wide, as an encoder gives), 50 distributions, K = 1. The runs are example indices 0..5999 of the
    same x: AIS keys its randomness by example index, so they are independent. Valid AIS has E[w] = p(x),
    so log mean w is within 3 standard errors of log p(x); its delta-method s.e. is
    sd(w) / (mean(w) sqrt(N)), with sd(w)/mean(w) ~0.2 here, so ~0.0027 nats at N = 6000: a bias of
    0.01 nats is ~4 standard errors. And mean log w lies below log p(x) by about Var(log w) / 2 ~0.025
    nats (Jensen), ~9 of its standard errors: the check that each estimate is a stochastic lower bound.
    The estimator that adapts each step size to its own chain's acceptance during the run fails the first
    check (+0.02 nats, ~8 standard errors): the check has the power to catch a bias of that size.
    """
    ppca = PPCA(latent=2, data=4, noise=1.0, n=1, seed=0)
    exact = ppca.log_marginal(ppca.x).item()
    post = ppca.posterior(ppca.x)
    q0 = Gaussian((post.mean + 0.2 * post.std).expand(PPCA_RUNS, -1), 1.5 * post.std.expand(PPCA_RUNS, -1))
    ll = ppca.log_likelihood(ppca.x.expand(PPCA_RUNS, -1))
    settings = AISSettings(steps=50, chains=1, step_size=0.1)
    if estimator == "frozen":
        log_w = run_ais(ll, q0, settings, 0, range(PPCA_RUNS)).log_weights
    else:
        log_w = adapting_in_run(ll, q0, settings, 0, range(PPCA_RUNS))
    log_mean, log_mean_se, mean_log, mean_log_se = pooled(log_w, exact)
    assert log_mean_se < 0.004, log_mean_se
    unbiased = abs(log_mean) < 3 * log_mean_se
    assert unbiased == (estimator == "frozen"), (log_mean, log_mean_se)
    if estimator == "frozen":
        assert mean_log + 3 * mean_log_se < 0, (mean_log, mean_log_se)


def toy_posterior_gaussian(model, x: torch.Tensor) -> Gaussian:
    """The Gaussian with p(z|x)'s mean and sd (on the quadrature grid): the q0 an ideal encoder would give."""
    from avb_zoo.evaluation.quadrature import latent_grid

    grid, _ = latent_grid(2, 7.0, 401)
    with torch.no_grad():
        log_p = -model.nll(x.expand(grid.shape[0], -1), grid.to(x.dtype)).double() - 0.5 * grid.square().sum(1)
    p = torch.softmax(log_p, 0).unsqueeze(1)
    mean = (p * grid).sum(0)
    return Gaussian(mean.unsqueeze(0), (p * (grid - mean).square()).sum(0).sqrt().unsqueeze(0))


@pytest.mark.slow
@pytest.mark.parametrize("estimator", ["frozen", "adapting in the run"])
def test_single_chain_ais_is_unbiased_on_the_toy(estimator: str) -> None:
    """One chain, pooled over 16,000 independent runs, against quadrature, on the shipped toy-avb decoder.

    x = the first toy point; q0 = the Gaussian with the exact posterior's mean and sd (the toy posterior
    is far from Gaussian, so the weights still spread); 30 distributions, K = 1; runs = example indices
    0..15999 of the same x. sd(w)/mean(w) ~0.5 here, so the s.e. of log mean w, sd(w) / (mean(w) sqrt(N)),
    is ~0.004 nats at N = 16,000: a bias of 0.015 nats is ~4 standard errors. Valid AIS: log mean w within
    3 s.e. of log p(x), and mean log w below it (Jensen gap ~0.4 nats). The estimator adapting its step
    sizes on its own chains misses by ~+0.07 nats (measured at N = 1000: +0.073 +- 0.013). ~1-3 min per case.
    """
    from avb_zoo.modelling.factory import load

    runs = 16_000
    model = load(Path(__file__).resolve().parents[1] / "models" / "toy-avb").double().eval()
    x = TOY_POINTS[:1].double()
    exact = quadrature_log_likelihood(model, x).item()
    post = toy_posterior_gaussian(model, x)
    q0 = Gaussian(post.mean.expand(runs, -1), post.std.expand(runs, -1))
    ll = model_log_likelihood(model, x.expand(runs, -1))
    settings = AISSettings(steps=30, chains=1, step_size=0.5)
    if estimator == "frozen":
        log_w = run_ais(ll, q0, settings, 0, range(runs)).log_weights
    else:
        log_w = adapting_in_run(ll, q0, settings, 0, range(runs))
    log_mean, log_mean_se, mean_log, mean_log_se = pooled(log_w, exact)
    assert log_mean_se < 0.006, log_mean_se
    assert (abs(log_mean) < 3 * log_mean_se) == (estimator == "frozen"), (log_mean, log_mean_se)
    if estimator == "frozen":
        assert mean_log + 3 * mean_log_se < 0, (mean_log, mean_log_se)


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
        ({"steps": 1}, "steps"),  # adapting needs a transition to tune on
        ({"pilot_chains": 0}, "pilot chains"),
        ({"pilot_steps": 1}, "pilot steps"),
        ({"steps": 10, "pilot_steps": 11}, "pilot steps"),
        ({"adapt_step_size": "yes"}, "adapt step size"),
    ],
)
def test_settings_out_of_range_are_named(change: dict, word: str) -> None:
    with pytest.raises(EvaluationError, match=word):
        AISSettings(**change).validate()


def test_one_step_without_adaptation_is_importance_sampling() -> None:
    AISSettings(steps=1, adapt_step_size=False).validate()  # no transition, nothing to tune: allowed
    AISSettings(steps=10, pilot_steps=20, adapt_step_size=False).validate()  # no pilot runs


@pytest.mark.parametrize(
    ("mean", "std"),
    [(float("nan"), 1.0), (float("inf"), 1.0), (0.0, float("nan")), (0.0, 0.0), (0.0, float("inf"))],
)
def test_non_finite_start_is_an_error(mean: float, std: float) -> None:
    ppca = PPCA(latent=2, data=4, noise=1.0, n=2)
    q0 = Gaussian(torch.full((2, 2), mean, dtype=F64), torch.full((2, 2), std, dtype=F64))
    with pytest.raises(EvaluationError, match="start distribution q0 has a non-finite"):
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
