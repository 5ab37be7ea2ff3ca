"""Annealed importance sampling (AIS) of log p(x), in the style of Wu et al. (2016) and the AVB authors' code.

AVB's encoder has no density, so importance-weighted bounds do not apply; AIS needs only log p(x|z), the
prior and a Gaussian start q0. The path of densities is

    f_beta(z) = q0(z)^(1 - beta) * [p(x|z) p(z)]^beta,   beta_0 = 0 < beta_1 < ... < beta_T = 1,

with weights log w = sum_t (beta_{t+1} - beta_t) [log p(x, z_t) - log q0(z_t)] and one HMC transition
targeting f_{beta_{t+1}} after each increment but the last (the authors' order). HMC uses unit mass and
a per-dimension leapfrog step eps * sigma0 (sigma0 the scale of q0) and a Metropolis test per chain.
K chains per example are combined as log p(x) ~ logsumexp_k log w_k - log K.

Step sizes. AIS is unbiased for p(x) (E[w] = p(x), so log of the estimate is a stochastic lower bound)
only when every transition kernel is fixed before the chains run: a step size tuned on the acceptance of
the very chains whose weights are averaged ties the kernels to those chains' history and breaks it. So
eps comes from a pilot run on separate noise: ``pilot_chains`` chains per example over ``pilot_steps``
distributions (the same schedule kind), adapting eps with the authors' rule after every transition
(divided by 1.1 when the example's mean acceptance probability over its pilot chains is below 0.6,
multiplied by 1.1 above 0.7; the authors average over the whole batch, per example keeps every example
independent of its batch-mates). The pilot records the step size it reached at each of its
distributions; that schedule, interpolated in log eps over beta onto the run's distributions (the
identity when the grids agree), is then frozen for the estimate. With ``adapt_step_size=False`` every
transition uses ``step_size`` and there is no pilot.

Everything is one tensor program over [examples, chains, latent] on any device. The random numbers of an
example come only from ``keyed_generator(seed, example_index, "ais")`` for the estimate and
``keyed_generator(seed, example_index, "ais-pilot")`` for the pilot (drawn on the CPU, then moved), so an
estimate depends on the seed and the example's index, not on the batch size, the device or sharding.

The pieces follow BlackJAX's shape: :func:`init` gives an :class:`AISState`, :func:`hmc_kernel` maps
(noise, state) to (state, :class:`HMCInfo`), :func:`anneal` adds one weight increment;
:func:`pilot_step_sizes` tunes the kernels and :func:`run_ais` drives them. The target is any
log-likelihood function, so AIS needs no model class.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import NamedTuple

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.compute.threads import tick
from avb_zoo.errors import EvaluationError, shown

LOG_2PI = math.log(2 * math.pi)
SCHEDULES = ("linear", "sigmoid")
SIGMOID_SHARPNESS = 4.0  # Wu et al.'s sigmoid schedule: beta ~ sigmoid(delta * (2t/T - 1)), delta = 4
PILOT_STREAM = "ais-pilot"  # the pilot's noise: a key stream apart from the estimate's ("ais")
NOISE_BLOCK = 64  # transitions whose noise is drawn in one call per example (part of the stream's definition)

# log p(x_b | z_bk) for z [B, K, d] -> [B, K]; must be differentiable in z
LogLikelihood = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class AISSettings:
    """How AIS runs. The defaults are the paper's protocol (1000 distributions, 5 chains, 10 leapfrog steps).

    With ``adapt_step_size`` the step sizes come from a pilot of ``pilot_chains`` chains per example over
    ``pilot_steps`` distributions (None: as many as the run), on noise of its own, and stay frozen during
    the estimate; the defaults (1 chain, the run's distributions) cost 1/chains of the run.
    """

    steps: int = 1000
    chains: int = 5
    leapfrog_steps: int = 10
    step_size: float = 0.01
    adapt_step_size: bool = True
    target_acceptance: tuple[float, float] = (0.6, 0.7)
    adapt_factor: float = 1.1
    schedule: str = "linear"
    pilot_chains: int = 1
    pilot_steps: int | None = None

    @property
    def pilot_distributions(self) -> int:
        """The pilot's number of distributions (``pilot_steps``, or the run's ``steps``)."""
        return self.steps if self.pilot_steps is None else self.pilot_steps

    @property
    def pilot_cost(self) -> float:
        """The pilot's leapfrog steps as a fraction of the estimate's (0 without adaptation)."""
        if not self.adapt_step_size:
            return 0.0
        return self.pilot_chains * max(self.pilot_distributions - 1, 0) / (self.chains * max(self.steps - 1, 1))

    def validate(self) -> AISSettings:
        """Raise EvaluationError naming the first setting out of range; returns self."""
        for name in ("steps", "chains", "leapfrog_steps", "pilot_chains"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EvaluationError(f"AIS {name.replace('_', ' ')} must be a positive integer, got {shown(value)}")
        for name in ("step_size", "adapt_factor"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise EvaluationError(f"AIS {name.replace('_', ' ')} must be a positive number, got {shown(value)}")
        if self.adapt_factor < 1:
            raise EvaluationError(f"AIS adapt factor must be at least 1, got {self.adapt_factor}")
        if not isinstance(self.adapt_step_size, bool):
            raise EvaluationError(f"AIS adapt step size must be true or false, got {shown(self.adapt_step_size)}")
        low, high = self.target_acceptance
        if not 0 <= low <= high <= 1:
            raise EvaluationError(f"AIS target acceptance must satisfy 0 <= low <= high <= 1, got {[low, high]}")
        if self.schedule not in SCHEDULES:
            raise EvaluationError(f"AIS schedule {shown(self.schedule)} is unknown; choose one of {list(SCHEDULES)}")
        if self.adapt_step_size:
            if self.steps < 2:
                raise EvaluationError(
                    f"AIS steps must be at least 2 when the step size is adapted (got {self.steps}): "
                    "with one distribution there is no transition to tune"
                )
            pilot = self.pilot_steps
            if pilot is not None and (not isinstance(pilot, int) or isinstance(pilot, bool) or pilot < 2):
                raise EvaluationError(f"AIS pilot steps must be an integer of at least 2, got {shown(pilot)}")
            if self.pilot_distributions > self.steps:
                raise EvaluationError(
                    f"AIS pilot steps ({self.pilot_distributions}) must not exceed the run's steps ({self.steps})"
                )
        return self

    def step_size_provenance(self) -> str:
        """Where the step sizes come from, in words (for the protocol record)."""
        if not self.adapt_step_size:
            return f"fixed: eps = {self.step_size:g} at every transition, no pilot run"
        low, high = self.target_acceptance
        return (
            f"step sizes from a pilot run on separate noise, frozen during the estimate: per example, "
            f"{self.pilot_chains} chain(s) over {self.pilot_distributions} distributions keyed by "
            f"(seed, example index, '{PILOT_STREAM}'), eps from {self.step_size:g} divided by {self.adapt_factor:g} "
            f"when the mean acceptance probability of its chains is below {low:g}, multiplied above {high:g}; "
            f"the eps reached at each distribution, interpolated in log eps over beta onto the run's "
            f"distributions (pilot cost {self.pilot_cost:.3g} of the run's leapfrog steps)"
        )

    def as_dict(self) -> dict:
        out = asdict(self)
        out["target_acceptance"] = list(self.target_acceptance)
        out["pilot_steps"] = self.pilot_distributions if self.adapt_step_size else None
        out["pilot_chains"] = self.pilot_chains if self.adapt_step_size else None
        out["step_size_schedule"] = self.step_size_provenance()
        return out


class Gaussian(NamedTuple):
    """A diagonal Gaussian per example: mean and std [B, d] (AIS's q0)."""

    mean: torch.Tensor
    std: torch.Tensor

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log N(z; mean, diag std^2) for z [B, K, d] -> [B, K]."""
        u = (z - self.mean.unsqueeze(1)) / self.std.unsqueeze(1)
        return -0.5 * (u.square() + LOG_2PI).sum(-1) - self.std.log().sum(-1, keepdim=True)

    def grad_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -(z - self.mean.unsqueeze(1)) / self.std.unsqueeze(1).square()


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) over the last dimension."""
    return -0.5 * (z.square() + LOG_2PI).sum(-1)


class AISState(NamedTuple):
    """Chains [B, K, d] with their log p(x, z) and its gradient, the running log weights, and eps [B]."""

    z: torch.Tensor
    log_joint: torch.Tensor
    grad_log_joint: torch.Tensor
    log_weight: torch.Tensor
    step_size: torch.Tensor


class HMCInfo(NamedTuple):
    """What one transition did: Metropolis acceptance probability and decision per chain [B, K]."""

    acceptance: torch.Tensor
    accepted: torch.Tensor


class StepNoise(NamedTuple):
    """The randomness of one transition: momenta [B, K, d] and uniforms [B, K] (the 'key' of the kernel)."""

    momentum: torch.Tensor
    uniform: torch.Tensor


@dataclass
class AISResult:
    """Per-example results: log p(x) estimates [B], chain log weights [B, K], and diagnostics."""

    log_likelihood: torch.Tensor
    log_weights: torch.Tensor
    acceptance: torch.Tensor  # mean acceptance probability over transitions and chains [B]
    step_size: torch.Tensor  # eps of the last transition [B]
    step_sizes: torch.Tensor  # the frozen schedule: eps of every transition [B, steps - 1]

    @property
    def monte_carlo_se(self) -> torch.Tensor:
        """Delta-method standard error of each log p(x) estimate from the spread of its chains' weights [B].

        sd(w) / (mean(w) sqrt(K)): the estimator's own noise, apart from the spread of log p(x) over the data
        (NaN for a single chain; heavy-tailed weights make it an underestimate).
        """
        w = torch.exp(self.log_weights - self.log_weights.max(1, keepdim=True).values)
        chains = w.shape[1]
        if chains < 2:
            return torch.full((w.shape[0],), math.nan, dtype=w.dtype)
        return w.std(1, unbiased=True) / (w.mean(1) * math.sqrt(chains))

    @property
    def effective_sample_size(self) -> torch.Tensor:
        """Kish ESS of the normalised chain weights [B], between 1 and K."""
        w = torch.softmax(self.log_weights, dim=1)
        return 1.0 / w.square().sum(1)


def beta_schedule(steps: int, kind: str = "linear") -> torch.Tensor:
    """beta_0 = 0 < ... < beta_steps = 1 (float64): linear, or Wu et al.'s rescaled sigmoid."""
    if kind == "linear":
        return torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    if kind == "sigmoid":
        s = torch.sigmoid(SIGMOID_SHARPNESS * torch.linspace(-1.0, 1.0, steps + 1, dtype=torch.float64))
        return (s - s[0]) / (s[-1] - s[0])
    raise EvaluationError(f"AIS schedule {shown(kind)} is unknown; choose one of {list(SCHEDULES)}")


def log_joint_and_grad(
    log_likelihood: LogLikelihood, z: torch.Tensor, log_prior: Callable = standard_normal_log_prob
) -> tuple[torch.Tensor, torch.Tensor]:
    """log p(x|z) + log p(z) [B, K] and its gradient in z [B, K, d] (both detached)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_likelihood(z) + log_prior(z)
        (grad,) = torch.autograd.grad(value.sum(), z)
    return value.detach(), grad.detach()


def init(q0: Gaussian, log_likelihood: LogLikelihood, white_noise: torch.Tensor, step_size: float = 0.01) -> AISState:
    """Chains z = mean + std * noise drawn from q0 (``white_noise`` [B, K, d] ~ N(0, I)), with zero weights."""
    z = q0.mean.unsqueeze(1) + q0.std.unsqueeze(1) * white_noise
    log_joint, grad = log_joint_and_grad(log_likelihood, z)
    batch, chains = z.shape[:2]
    zeros = torch.zeros(batch, chains, dtype=z.dtype, device=z.device)
    eps = torch.full((batch,), step_size, dtype=z.dtype, device=z.device)
    return AISState(z, log_joint, grad, zeros, eps)


def anneal(state: AISState, q0: Gaussian, beta_from: float, beta_to: float) -> AISState:
    """Add the weight increment (beta_to - beta_from) * (log p(x, z) - log q0(z)) at the current z."""
    increment = (beta_to - beta_from) * (state.log_joint - q0.log_prob(state.z))
    return state._replace(log_weight=state.log_weight + increment)


def _log_target(log_joint: torch.Tensor, log_q0: torch.Tensor, beta: float) -> torch.Tensor:
    return beta * log_joint + (1.0 - beta) * log_q0


def hmc_kernel(
    noise: StepNoise,
    state: AISState,
    q0: Gaussian,
    beta: float,
    log_likelihood: LogLikelihood,
    leapfrog_steps: int = 10,
) -> tuple[AISState, HMCInfo]:
    """One HMC transition leaving f_beta invariant, for every chain at once.

    Leapfrog with unit mass and per-dimension step h = eps * sigma0 (a reparameterisation z = sigma0 * u,
    so it stays volume-preserving and reversible); a proposal whose energy is not finite is rejected.
    """
    h = (state.step_size.view(-1, 1, 1) * q0.std.unsqueeze(1)).to(state.z.dtype)
    z, p = state.z, noise.momentum
    log_q0 = q0.log_prob(z)
    grad = beta * state.grad_log_joint + (1.0 - beta) * q0.grad_log_prob(z)
    energy0 = -_log_target(state.log_joint, log_q0, beta) + 0.5 * p.square().sum(-1)
    p = p + 0.5 * h * grad
    log_joint, grad_joint = state.log_joint, state.grad_log_joint
    for step in range(leapfrog_steps):
        z = z + h * p
        log_joint, grad_joint = log_joint_and_grad(log_likelihood, z)
        grad = beta * grad_joint + (1.0 - beta) * q0.grad_log_prob(z)
        p = p + (0.5 if step == leapfrog_steps - 1 else 1.0) * h * grad
    energy1 = -_log_target(log_joint, q0.log_prob(z), beta) + 0.5 * p.square().sum(-1)
    log_accept = (energy0 - energy1).clamp(max=0.0)
    log_accept = torch.where(torch.isfinite(log_accept) & torch.isfinite(z).all(-1), log_accept, -math.inf)
    accepted = noise.uniform.log() < log_accept
    keep = accepted.unsqueeze(-1)
    new_state = state._replace(
        z=torch.where(keep, z, state.z),
        log_joint=torch.where(accepted, log_joint, state.log_joint),
        grad_log_joint=torch.where(keep, grad_joint, state.grad_log_joint),
    )
    return new_state, HMCInfo(log_accept.exp(), accepted)


def adapt_step_size(step_size: torch.Tensor, acceptance: torch.Tensor, settings: AISSettings) -> torch.Tensor:
    """eps / factor where the example's mean acceptance over its chains is below the target, * factor above."""
    rate = acceptance.mean(1)
    low, high = settings.target_acceptance
    factor = torch.ones_like(step_size)
    factor = torch.where(rate < low, 1.0 / settings.adapt_factor, factor)
    factor = torch.where(rate > high, settings.adapt_factor, factor)
    return step_size * factor


class KeyedNoise:
    """The AIS noise of each example, streamed from its own generator keyed by (seed, example index, stream).

    Per example, in this order: the K x d starting noise, then for each block of up to NOISE_BLOCK
    transitions the momenta and the uniforms. The stream does not depend on which examples share a batch.
    """

    def __init__(
        self,
        seed: int,
        example_indices: Sequence[int],
        chains: int,
        dim: int,
        transitions: int,
        device: torch.device | str,
        dtype: torch.dtype,
        stream: str = "ais",
    ) -> None:
        self.generators = [keyed_generator(seed, int(i), stream) for i in example_indices]
        self.chains, self.dim, self.transitions = chains, dim, transitions
        self.device, self.dtype = torch.device(device), dtype
        self._block_start = 0
        self._momentum: torch.Tensor | None = None
        self._uniform: torch.Tensor | None = None

    def _move(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def initial(self) -> torch.Tensor:
        """Starting noise [B, K, d] ~ N(0, I)."""
        return self._move(torch.stack([torch.randn(self.chains, self.dim, generator=g) for g in self.generators]))

    def step(self, t: int) -> StepNoise:
        """The noise of transition ``t`` (called with t = 0, 1, ... in order)."""
        if self._momentum is None or t >= self._block_start + self._momentum.shape[1]:
            self._block_start = t
            n = min(NOISE_BLOCK, self.transitions - t)
            k, d = self.chains, self.dim
            momentum, uniform = [], []
            for g in self.generators:
                momentum.append(torch.randn(n, k, d, generator=g))
                uniform.append(torch.rand(n, k, generator=g))
            self._momentum = self._move(torch.stack(momentum))
            self._uniform = self._move(torch.stack(uniform))
        assert self._uniform is not None
        i = t - self._block_start
        return StepNoise(self._momentum[:, i], self._uniform[:, i])


def interpolate_step_sizes(beta_from: torch.Tensor, eps: torch.Tensor, beta_to: torch.Tensor) -> torch.Tensor:
    """eps [B, n] recorded at the increasing betas ``beta_from`` [n], read at ``beta_to`` [m] -> [B, m]:
    linear in log eps between neighbours, constant beyond the ends (exact where the grids agree)."""
    beta_from = beta_from.to(device=eps.device, dtype=torch.float64)
    beta_to = beta_to.to(device=eps.device, dtype=torch.float64)
    if beta_from.numel() == 1:
        return eps[:, :1].expand(-1, beta_to.numel()).clone()
    hi = torch.searchsorted(beta_from, beta_to).clamp(1, beta_from.numel() - 1)
    lo = hi - 1
    frac = ((beta_to - beta_from[lo]) / (beta_from[hi] - beta_from[lo])).clamp(0.0, 1.0)
    log_eps = eps.double().log()
    out = (log_eps[:, lo] * (1.0 - frac) + log_eps[:, hi] * frac).exp()
    return out.to(eps.dtype)


def pilot_step_sizes(
    log_likelihood: LogLikelihood,
    q0: Gaussian,
    settings: AISSettings,
    seed: int,
    example_indices: Sequence[int],
    stream: str = PILOT_STREAM,
) -> torch.Tensor:
    """The step size of each of the run's ``steps - 1`` transitions, per example [B, steps - 1].

    Fixed (``step_size``) without adaptation. Otherwise a pilot of ``pilot_chains`` chains per example
    over ``pilot_distributions`` distributions, on noise keyed by (seed, example index, "ais-pilot"),
    adapts eps after each transition (:func:`adapt_step_size`) and records the eps reached at each beta;
    the record is interpolated onto the run's betas. Nothing here touches the estimate's noise.
    """
    batch, dim = q0.mean.shape
    transitions = settings.steps - 1
    dtype, device = q0.mean.dtype, q0.mean.device
    if not settings.adapt_step_size:
        return torch.full((batch, transitions), settings.step_size, dtype=dtype, device=device)
    steps = settings.pilot_distributions
    betas = beta_schedule(steps, settings.schedule)
    noise = KeyedNoise(seed, example_indices, settings.pilot_chains, dim, steps - 1, device, dtype, stream)
    state = init(q0, log_likelihood, noise.initial(), settings.step_size)
    reached = []
    for t in range(steps - 1):  # the weights are not needed: the chains alone set the acceptance
        tick()
        beta = float(betas[t + 1])
        state, info = hmc_kernel(noise.step(t), state, q0, beta, log_likelihood, settings.leapfrog_steps)
        state = state._replace(step_size=adapt_step_size(state.step_size, info.acceptance, settings))
        reached.append(state.step_size)
    recorded = torch.stack(reached, dim=1)
    return interpolate_step_sizes(betas[1:steps], recorded, beta_schedule(settings.steps, settings.schedule)[1:-1])


def check_start(q0: Gaussian, example_indices: Sequence[int]) -> None:
    """EvaluationError unless q0 has one finite Gaussian with positive scales per example index."""
    batch = q0.mean.shape[0]
    if len(example_indices) != batch:
        raise EvaluationError(f"{len(example_indices)} example indices for a batch of {batch}")
    if not (torch.isfinite(q0.mean).all() and torch.isfinite(q0.std).all() and (q0.std > 0).all()):
        raise EvaluationError(
            "AIS start distribution q0 has a non-finite mean or a non-finite or non-positive scale (the start moments)"
        )


def run_ais(
    log_likelihood: LogLikelihood,
    q0: Gaussian,
    settings: AISSettings,
    seed: int,
    example_indices: Sequence[int],
    *,
    step_sizes: torch.Tensor | None = None,
    stream: str = "ais",
) -> AISResult:
    """log p(x) per example by AIS from q0 to p(z|x) (prior N(0, I)); see the module docstring.

    ``q0`` holds one Gaussian per example [B, d]; ``example_indices`` [B] key each example's randomness
    (the chains' noise comes from the key stream ``stream``). The step sizes are settled
    (:func:`pilot_step_sizes`) before the estimate's chains start, and frozen; ``step_sizes`` [B, steps - 1]
    passes a schedule already settled (so that reverse AIS can run on the very same kernels).
    """
    settings.validate()
    batch, dim = q0.mean.shape
    check_start(q0, example_indices)
    if step_sizes is None:
        step_sizes = pilot_step_sizes(log_likelihood, q0, settings, seed, example_indices)
    betas = beta_schedule(settings.steps, settings.schedule).tolist()
    transitions = settings.steps - 1
    noise = KeyedNoise(seed, example_indices, settings.chains, dim, transitions, q0.mean.device, q0.mean.dtype, stream)
    state = init(q0, log_likelihood, noise.initial(), settings.step_size)
    acceptance_sum = torch.zeros(batch, dtype=torch.float64, device=q0.mean.device)
    for t in range(settings.steps):
        tick()  # the thread count follows the machine's load during a long run (see compute.threads)
        state = anneal(state, q0, betas[t], betas[t + 1])
        if t == transitions:  # no transition after the last increment
            break
        state = state._replace(step_size=step_sizes[:, t])
        state, info = hmc_kernel(noise.step(t), state, q0, betas[t + 1], log_likelihood, settings.leapfrog_steps)
        acceptance_sum += info.acceptance.mean(1).double()
    log_weights = state.log_weight.double()
    estimate = torch.logsumexp(log_weights, dim=1) - math.log(settings.chains)
    if not torch.isfinite(estimate).all():
        bad = [int(example_indices[i]) for i in torch.nonzero(~torch.isfinite(estimate)).flatten().tolist()]
        raise EvaluationError(f"AIS gave a non-finite log-likelihood for example(s) {bad[:5]}: check the model")
    return AISResult(
        log_likelihood=estimate.cpu(),
        log_weights=log_weights.cpu(),
        acceptance=(acceptance_sum / max(transitions, 1)).cpu(),
        step_size=state.step_size.double().cpu(),
        step_sizes=step_sizes.double().cpu(),
    )
