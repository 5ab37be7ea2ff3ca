"""Eight Schools, non-centred, in two variants (``VARIANTS``), each a proper log density in z in R^10.

``paper``: the authors' notebook (notebooks/Stan-example.ipynb), the model of the paper's experiment:

    mu ~ N(0, 1), tau ~ N(0, 1) (unconstrained), eta_j ~ N(0, 1), y_j ~ N(mu + tau * eta_j, sigma_j)

with y the classic data divided by 10 and the notebook's sigma. z = (mu, tau, eta_1..8). The posterior is
symmetric under (tau, eta) -> (-tau, -eta), so it has two mirror-image halves, one for each sign of tau.

``posteriordb``: posteriordb's ``eight_schools-eight_schools_noncentered``:

    mu ~ N(0, 5), tau ~ HalfCauchy(0, 5), theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau * theta_tilde_j, sigma_j)

with the classic data (Rubin 1981). AVB samples the unconstrained z = (mu, log_tau, theta_tilde_1..8), so the
log joint includes the log-Jacobian of tau = exp(log_tau).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from avb_zoo.errors import ConfigError, shown

Y: tuple[float, ...] = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
SIGMA: tuple[float, ...] = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
J = len(Y)
DIM = 2 + J  # mu, log_tau, theta_tilde_1..8
PARAM_NAMES: tuple[str, ...] = ("mu", "log_tau", *(f"theta_tilde_{j + 1}" for j in range(J)))
MU_SCALE = 5.0
TAU_SCALE = 5.0

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


# The authors' notebook: y is the classic data / 10; sigma as the notebook has it (not the classic / 10).
PAPER_Y: tuple[float, ...] = (2.8, 0.8, -0.3, 0.7, -0.1, 0.1, 1.8, 1.2)
PAPER_SIGMA: tuple[float, ...] = (0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4)
PAPER_PARAM_NAMES: tuple[str, ...] = ("mu", "tau", *(f"eta_{j + 1}" for j in range(J)))


def _check(z: torch.Tensor) -> None:
    if z.ndim < 1 or z.shape[-1] != DIM:
        raise ValueError(f"eight schools expects z of shape [..., {DIM}], got {list(z.shape)}")
    if not z.is_floating_point():
        raise ValueError(f"eight schools expects a floating z, got {z.dtype}")


def _log_joint(z: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    mu, log_tau, eta = z[..., 0], z[..., 1], z[..., 2:]
    tau = torch.exp(log_tau)
    lp_mu = -0.5 * (mu / MU_SCALE) ** 2 - math.log(MU_SCALE) - _HALF_LOG_2PI
    # HalfCauchy(0, s) at tau = exp(log_tau), times the Jacobian d tau / d log_tau = tau.
    # log(1 + (tau/s)^2) = softplus(2 (log_tau - log s)): no overflow for large log_tau.
    lp_tau = (
        math.log(2.0 / (math.pi * TAU_SCALE))
        - torch.nn.functional.softplus(2.0 * (log_tau - math.log(TAU_SCALE)))
        + log_tau
    )
    lp_eta = (-0.5 * eta**2 - _HALF_LOG_2PI).sum(-1)
    theta = mu.unsqueeze(-1) + tau.unsqueeze(-1) * eta
    lp_y = (-0.5 * ((y - theta) / sigma) ** 2 - torch.log(sigma) - _HALF_LOG_2PI).sum(-1)
    return lp_mu + lp_tau + lp_eta + lp_y


def _paper_log_joint(z: torch.Tensor, y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    mu, tau, eta = z[..., 0], z[..., 1], z[..., 2:]
    lp_prior = (-0.5 * z.square() - _HALF_LOG_2PI).sum(-1)  # mu, tau and every eta_j ~ N(0, 1)
    theta = mu.unsqueeze(-1) + tau.unsqueeze(-1) * eta
    lp_y = (-0.5 * ((y - theta) / sigma) ** 2 - torch.log(sigma) - _HALF_LOG_2PI).sum(-1)
    return lp_prior + lp_y


@dataclass(frozen=True)
class Variant:
    """One Eight Schools model: its data, its log joint in z and the names of z's coordinates."""

    name: str
    y: tuple[float, ...]
    sigma: tuple[float, ...]
    log_joint: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
    param_names: tuple[str, ...]
    description: str


VARIANTS: dict[str, Variant] = {
    "posteriordb": Variant(
        "posteriordb", Y, SIGMA, _log_joint, PARAM_NAMES, "posteriordb eight_schools_noncentered (classic data)"
    ),
    "paper": Variant(
        "paper",
        PAPER_Y,
        PAPER_SIGMA,
        _paper_log_joint,
        PAPER_PARAM_NAMES,
        "the authors' notebook: y / 10, N(0, 1) priors, tau unconstrained",
    ),
}


def get_variant(name: str) -> Variant:
    """The variant called ``name``; a ConfigError naming the known ones otherwise."""
    if name not in VARIANTS:
        raise ConfigError(f"unknown Eight Schools variant {shown(name)}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


def variant_log_joint(z: torch.Tensor, variant: str) -> torch.Tensor:
    """log p(y, z) of the named variant for z [..., 10] -> [...] (dtype and device of z)."""
    _check(z)
    v = get_variant(variant)
    y = torch.tensor(v.y, dtype=z.dtype, device=z.device)
    sigma = torch.tensor(v.sigma, dtype=z.dtype, device=z.device)
    return v.log_joint(z, y, sigma)


def log_joint(z: torch.Tensor) -> torch.Tensor:
    """log p(y, mu, tau, theta_tilde) in the unconstrained z [..., 10] -> [...] (dtype and device of z)."""
    _check(z)
    y = torch.tensor(Y, dtype=z.dtype, device=z.device)
    sigma = torch.tensor(SIGMA, dtype=z.dtype, device=z.device)
    return _log_joint(z, y, sigma)


def constrain(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's parameters from z: mu [...], tau [...] (> 0), theta = mu + tau * theta_tilde [..., 8]."""
    _check(z)
    mu, tau, eta = z[..., 0], torch.exp(z[..., 1]), z[..., 2:]
    return {"mu": mu, "tau": tau, "theta": mu.unsqueeze(-1) + tau.unsqueeze(-1) * eta}


class EightSchoolsLikelihood(torch.nn.Module):
    """The log joint of one variant as a parameter-free module, so a trainer can use it where a decoder would go.

    y and sigma are non-persistent buffers: they follow ``.to(device)`` but stay out of the state dict.
    """

    def __init__(self, variant: str = "posteriordb") -> None:
        super().__init__()
        self.variant = get_variant(variant)
        self.register_buffer("y", torch.tensor(self.variant.y, dtype=torch.float64), persistent=False)
        self.register_buffer("sigma", torch.tensor(self.variant.sigma, dtype=torch.float64), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """log p(y, z) for z [..., 10] -> [...]."""
        _check(z)
        y, sigma = (b.to(device=z.device, dtype=z.dtype) for b in (self.y, self.sigma))
        return self.variant.log_joint(z, y, sigma)
