"""Bidirectional Monte Carlo (BDMC, Grosse et al. 2015): how loose AIS is at a given budget.

Forward AIS gives a weight with E[w] = p(x), so its log is a stochastic lower bound on log p(x). For data
simulated from the model, (z, x) ~ p(z) p(x|z), the z is an exact draw of p(z|x); running the same
transitions in the reverse order (beta_T = 1 down to beta_0 = 0) from that z gives a weight with
E[w_rev] = 1/p(x), so -log mean_k w_rev_k is a stochastic upper bound. The gap, upper - lower averaged over
simulated pairs, bounds how far the forward estimate can be from log p(x) on data like that, with that
schedule and those kernels. Real test images have no exact posterior draw, so the gap on simulated data is
reported beside the real-data estimate.

Both directions use the estimate's own protocol: the same q0 (computed from the simulated x exactly as
for a test image), the same inverse temperatures, chains and leapfrog steps, and one frozen step-size
schedule from a pilot on noise of its own (:func:`avb_zoo.evaluation.ais.pilot_step_sizes`), so the kernel
targeting beta_t is the same transition in both directions. Pair i's randomness is keyed by
(seed, i, purpose) with the purposes in :data:`STREAMS`, apart from every stream the estimate uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.errors import EvaluationError
from avb_zoo.evaluation.ais import (
    AISResult,
    AISSettings,
    AISState,
    Gaussian,
    KeyedNoise,
    LogLikelihood,
    anneal,
    beta_schedule,
    check_start,
    hmc_kernel,
    log_joint_and_grad,
    pilot_step_sizes,
    run_ais,
)

STREAMS = {
    "latent": "bdmc-z",  # z ~ p(z) of pair i
    "data": "bdmc-x",  # the uniforms that turn sigmoid(logits(z)) into bits
    "pilot": "bdmc-pilot",  # the step-size pilot (forward, from q0)
    "forward": "bdmc-forward",  # the forward chains
    "reverse": "bdmc-reverse",  # the reverse chains
}


@dataclass
class BDMCResult:
    """Per simulated pair: forward AIS (stochastic lower bound) and reverse AIS (stochastic upper bound) [N]."""

    lower: torch.Tensor
    upper: torch.Tensor
    forward: AISResult
    reverse_log_weights: torch.Tensor  # [N, K]: log w_rev of each reverse chain

    @property
    def gap(self) -> torch.Tensor:
        """upper - lower per pair [N]: non-negative in expectation."""
        return self.upper - self.lower


def run_reverse_ais(
    log_likelihood: LogLikelihood,
    q0: Gaussian,
    settings: AISSettings,
    step_sizes: torch.Tensor,
    z_exact: torch.Tensor,
    seed: int,
    example_indices: Sequence[int],
    stream: str = STREAMS["reverse"],
) -> torch.Tensor:
    """log w_rev [B, K] of reverse AIS from exact posterior draws ``z_exact`` [B, d] (every chain starts there).

    The weight increments are the forward ones negated, (beta_t - beta_{t+1}) [log p(x, z) - log q0(z)],
    and after the increment leaving beta_{t+1} the transition targeting beta_t (t >= 1) runs with the step
    size the forward run uses for beta_t. E[w_rev] = 1/p(x).
    """
    settings.validate()
    check_start(q0, example_indices)
    batch, dim = q0.mean.shape
    if z_exact.shape != (batch, dim):
        shape = list(z_exact.shape)
        raise EvaluationError(f"reverse AIS needs one exact draw per example [{batch}, {dim}], got {shape}")
    betas = beta_schedule(settings.steps, settings.schedule).tolist()
    transitions = settings.steps - 1
    noise = KeyedNoise(seed, example_indices, settings.chains, dim, transitions, q0.mean.device, q0.mean.dtype, stream)
    z = z_exact.to(q0.mean.dtype).unsqueeze(1).expand(-1, settings.chains, -1).contiguous()
    log_joint, grad = log_joint_and_grad(log_likelihood, z)
    state = init_at(z, log_joint, grad, settings.step_size)
    for i, t in enumerate(range(settings.steps - 1, -1, -1)):
        state = anneal(state, q0, betas[t + 1], betas[t])
        if t == 0:  # the forward run has no transition at beta_0
            break
        state = state._replace(step_size=step_sizes[:, t - 1])
        state, _ = hmc_kernel(noise.step(i), state, q0, betas[t], log_likelihood, settings.leapfrog_steps)
    return state.log_weight.double().cpu()


def init_at(z: torch.Tensor, log_joint: torch.Tensor, grad: torch.Tensor, step_size: float) -> AISState:
    """An AIS state at given chains z [B, K, d], with zero weights."""
    batch, chains = z.shape[:2]
    zeros = torch.zeros(batch, chains, dtype=z.dtype, device=z.device)
    eps = torch.full((batch,), step_size, dtype=z.dtype, device=z.device)
    return AISState(z, log_joint, grad, zeros, eps)


def bdmc(
    log_likelihood: LogLikelihood,
    q0: Gaussian,
    settings: AISSettings,
    z_exact: torch.Tensor,
    seed: int,
    example_indices: Sequence[int],
) -> BDMCResult:
    """Forward and reverse AIS on simulated pairs (x is in ``log_likelihood``, z in ``z_exact`` [B, d]).

    One pilot (stream ``bdmc-pilot``) fixes the step sizes; both directions then run on them, frozen.
    """
    step_sizes = pilot_step_sizes(log_likelihood, q0, settings, seed, example_indices, STREAMS["pilot"])
    forward = run_ais(
        log_likelihood, q0, settings, seed, example_indices, step_sizes=step_sizes, stream=STREAMS["forward"]
    )
    log_w_rev = run_reverse_ais(log_likelihood, q0, settings, step_sizes, z_exact, seed, example_indices)
    upper = -(torch.logsumexp(log_w_rev, dim=1) - math.log(settings.chains))
    if not torch.isfinite(upper).all():
        raise EvaluationError("reverse AIS gave a non-finite upper bound for a simulated pair: check the model")
    return BDMCResult(forward.log_likelihood, upper, forward, log_w_rev)


def simulate_pairs(model: Any, indices: Sequence[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x [B, x_dim], z [B, d]) with z ~ p(z) and binary x ~ p(x|z), pair i keyed by (seed, i, 'bdmc-z' / 'bdmc-x').

    x = (u <= sigmoid(logits(z))), the uniforms drawn on the CPU, so the pairs do not depend on the device.
    """
    dtype, device = model.dtype, model.device
    z = [torch.randn(1, model.latent_dim, generator=keyed_generator(seed, i, STREAMS["latent"])) for i in indices]
    z = torch.cat(z)
    z = z.to(device=device, dtype=dtype)
    with torch.no_grad():
        probs = torch.sigmoid(model.decode_logits(z)).float().cpu()
    u = torch.cat([torch.rand(1, model.x_dim, generator=keyed_generator(seed, i, STREAMS["data"])) for i in indices])
    x = (u <= probs).to(dtype=dtype, device=device)
    return x, z


def check_bdmc_pairs(pairs: int | None) -> None:
    """EvaluationError unless ``pairs`` is None (no bracket) or a positive count."""
    if pairs is not None and (not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1):
        raise EvaluationError(f"--bdmc must be a positive number of simulated pairs, got {pairs!r}")


def check_bdmc_model(config: dict[str, Any]) -> None:
    """EvaluationError unless the model has a Bernoulli likelihood p(x|z) to simulate data from."""
    decoder = (config.get("decoder") or {}).get("name")
    data = (config.get("data") or {}).get("name")
    if data == "eight-schools" or decoder == "eight-schools":
        raise EvaluationError(
            f"--bdmc needs a model with a likelihood p(x|z) to simulate data from; {config.get('id')} is a "
            "posterior sampler (Eight Schools), whose log joint has no data to simulate"
        )
    if decoder == "gaussian":
        raise EvaluationError(
            f"--bdmc simulates binary data and needs a Bernoulli decoder; {config.get('id')} has a Gaussian one"
        )


@torch.no_grad()
def model_bdmc(model: Any, settings: AISSettings, indices: Sequence[int], seed: int) -> BDMCResult:
    """BDMC of ``model`` on the simulated pairs ``indices`` (one batch), with the estimate's q0 and protocol."""
    from avb_zoo.evaluation.metrics import initial_distribution, model_log_likelihood

    x, z = simulate_pairs(model, indices, seed)
    q0 = initial_distribution(model, x, seed)
    return bdmc(model_log_likelihood(model, x), q0, settings, z, seed, list(indices))


def summarise_bdmc(lower: torch.Tensor, upper: torch.Tensor, settings: AISSettings, q0: str, seed: int) -> dict:
    """The metrics.json fields: ``log_likelihood_bdmc_gap`` (mean over pairs) with its s.e., and a ``bdmc`` record."""
    gap = (upper - lower).double()
    n = gap.numel()
    se = float(gap.std(unbiased=True) / math.sqrt(n)) if n > 1 else None
    return {
        "log_likelihood_bdmc_gap": float(gap.mean()),
        "log_likelihood_bdmc_gap_spread_se": se,
        "bdmc": {
            "pairs": n,
            "lower_mean": float(lower.double().mean()),
            "upper_mean": float(upper.double().mean()),
            "gap_mean": float(gap.mean()),
            "gap_se": se,
            "gap_se_kind": "std of the per-pair gaps over the simulated pairs / sqrt(pairs)",
            "gap_max": float(gap.max()),
            "protocol": {
                "data": "pairs simulated from the model: z ~ N(0, I), x = (u <= sigmoid(logits(z))), "
                "pair i keyed by (seed, i, 'bdmc-z') and (seed, i, 'bdmc-x')",
                "seed": seed,
                "lower": "forward AIS from q0: log mean_k w_k (a stochastic lower bound on log p(x))",
                "upper": "reverse AIS from the simulated z, every chain starting there: -log mean_k w_rev_k "
                "(a stochastic upper bound)",
                "q0": q0,
                "ais": settings.as_dict(),
                "kernels": "one step-size schedule from a pilot keyed (seed, i, 'bdmc-pilot'), frozen and shared by "
                "both directions; the transition targeting beta_t is the same in both",
                "noise": "forward chains keyed (seed, i, 'bdmc-forward'), reverse chains (seed, i, 'bdmc-reverse')",
            },
        },
    }
