"""Comparing posterior samplers with a reference: 1-D marginal distances, and a mean-field Gaussian VI baseline.

The distances compare empirical CDFs exactly (no kernel density, no binning):
Wasserstein-1 = integral |F - G| and the energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| = 2 integral (F - G)^2.
The baseline is ADVI's mean-field family, q(z) = N(m, diag s^2), fitted by maximising the reparameterised
ELBO with Adam (keyed noise, so a fit is a function of its seed).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from avb_zoo.compute.rng import keyed_generator


def marginal_distances(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Wasserstein-1 and energy distance between the empirical distributions of 1-D samples a and b."""
    a, b = np.sort(np.asarray(a, dtype=np.float64).ravel()), np.sort(np.asarray(b, dtype=np.float64).ravel())
    if a.size == 0 or b.size == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("marginal distances need non-empty, finite samples")
    grid = np.concatenate([a, b])
    grid.sort()
    widths = np.diff(grid)
    f = np.searchsorted(a, grid[:-1], side="right") / a.size
    g = np.searchsorted(b, grid[:-1], side="right") / b.size
    return {"wasserstein1": float(np.sum(np.abs(f - g) * widths)), "energy": float(2 * np.sum((f - g) ** 2 * widths))}


def fit_mean_field(
    log_joint: Callable[[torch.Tensor], torch.Tensor],
    dim: int,
    steps: int = 10_000,
    samples: int = 64,
    lr: float = 1e-2,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std of the mean-field Gaussian maximising E_q[log_joint(z)] + H[q] (float64, CPU)."""
    mean = torch.zeros(dim, dtype=torch.float64, requires_grad=True)
    log_std = torch.zeros(dim, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([mean, log_std], lr=lr)
    for step in range(steps):
        eps = torch.randn(samples, dim, generator=keyed_generator(seed, step, "mean-field"), dtype=torch.float64)
        z = mean + log_std.exp() * eps
        loss = -(log_joint(z).mean() + log_std.sum())  # entropy of q up to a constant
        opt.zero_grad()
        loss.backward()
        opt.step()
    return mean.detach(), log_std.detach().exp()
