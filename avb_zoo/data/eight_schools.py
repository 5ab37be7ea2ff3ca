"""Eight Schools, non-centred, as posteriordb's ``eight_schools-eight_schools_noncentered``.

    mu ~ N(0, 5), tau ~ HalfCauchy(0, 5), theta_tilde_j ~ N(0, 1), y_j ~ N(mu + tau * theta_tilde_j, sigma_j)

with the classic data (Rubin 1981). The posteriordb variant (not the authors' notebook, which divides y by 10
and uses N(0, 1) priors with an unconstrained tau) is used because reference posterior draws exist for it.
AVB samples the unconstrained z = (mu, log_tau, theta_tilde_1..8) in R^10, so the log joint includes the
log-Jacobian of tau = exp(log_tau) and every normalising constant: it is a proper log density in z.
"""

from __future__ import annotations

import math

import torch

Y: tuple[float, ...] = (28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0)
SIGMA: tuple[float, ...] = (15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0)
J = len(Y)
DIM = 2 + J  # mu, log_tau, theta_tilde_1..8
PARAM_NAMES: tuple[str, ...] = ("mu", "log_tau", *(f"theta_tilde_{j + 1}" for j in range(J)))
MU_SCALE = 5.0
TAU_SCALE = 5.0

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


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
    """The log joint as a parameter-free module, so a trainer can use it where a decoder would go.

    y and sigma are non-persistent buffers: they follow ``.to(device)`` but stay out of the state dict.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("y", torch.tensor(Y, dtype=torch.float64), persistent=False)
        self.register_buffer("sigma", torch.tensor(SIGMA, dtype=torch.float64), persistent=False)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """log p(y, mu, tau, theta_tilde) for z [..., 10] -> [...]."""
        _check(z)
        return _log_joint(z, self.y.to(device=z.device, dtype=z.dtype), self.sigma.to(device=z.device, dtype=z.dtype))
