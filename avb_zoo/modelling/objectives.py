"""The training objectives: AVB (Algorithm 1), AVB with Adaptive Contrast, and the VAE.

Conventions (from the authors' code): losses are means over the batch; the primal loss is multiplied by
``loss_scale`` (1/784 on MNIST, the per-pixel scaling), the adversary loss is plain binary cross-entropy.
The primal loss must only be differentiated with respect to encoder and decoder parameters and the adversary
loss only with respect to the adversary (the trainer does exactly that): by Proposition 2 the gradient of
the primal objective flows through z alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from avb_zoo.modelling.model import AVBModel

VARIANCE_FLOOR = 1e-4  # added to Var[z|x] before normalising (the authors' sqrt(v + 1e-4))
LOG_2PI = math.log(2 * math.pi)


@dataclass
class Losses:
    """One minibatch's losses. ``primal`` and ``adversary`` carry gradients; the rest are per-example and detached.

    ``kl`` is the KL estimate log q(z|x) - log p(z) (the adversary's, for AVB); ``elbo = -rec - kl``, an
    estimate and not a bound for AVB.
    """

    primal: torch.Tensor
    adversary: torch.Tensor | None
    rec: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        return -(self.rec + self.kl)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row."""
    return -0.5 * (z.square() + LOG_2PI).sum(1)


def adversary_loss(t_q: torch.Tensor, t_p: torch.Tensor) -> torch.Tensor:
    """BCE(T(x, z~q), 1) + BCE(T(x, z~contrast), 0): the adversary maximises Eq. 3 (minimises this)."""
    return F.binary_cross_entropy_with_logits(t_q, torch.ones_like(t_q)) + F.binary_cross_entropy_with_logits(
        t_p, torch.zeros_like(t_p)
    )


def contrast_inputs(
    model: AVBModel, x: torch.Tensor, eps: torch.Tensor, moment_eps: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z, the adversary's view of z, log r(z) - log p(z)) for plain AVB or Adaptive Contrast.

    AC: z~ = (z - mu) / s with mu, s = sqrt(Var + 1e-4) from the encoder's moments, both detached; the
    contrast r is N(mu, s^2), so log r(z) = -1/2 sum(z~^2 + log s^2 + log 2 pi). (The reference code writes
    log Var instead of log s^2 here; that constant does not change any gradient, and log s^2 makes the value
    the exact log-density of the contrast actually used and finite when Var -> 0.)
    Plain AVB: the contrast is the prior, z~ = z and the correction is zero. ``moment_eps``: the noise the
    moments are estimated from (default ``eps``; the trainer passes the global batch's, see the encoders).
    """
    return encoder_contrast_inputs(model.encoder, model.adaptive_contrast, x, eps, moment_eps)


def encoder_contrast_inputs(
    encoder: nn.Module,
    adaptive_contrast: bool,
    x: torch.Tensor,
    eps: torch.Tensor,
    moment_eps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`contrast_inputs` from the encoder alone (what the trainer's primal player runs)."""
    if not adaptive_contrast:
        z = encoder(x, eps).to(x.dtype)  # float32 under bf16 autocast, as every log-density below
        return z, z, torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
    z, mean, var = (t.to(x.dtype) for t in encoder.sample_and_moments(x, eps, moment_eps))
    s2 = var.detach() + VARIANCE_FLOOR
    z_tilde = (z - mean.detach()) / s2.sqrt()
    log_r = -0.5 * (z_tilde.square() + s2.log() + LOG_2PI).sum(1)
    return z, z_tilde, log_r - log_standard_normal(z)


def avb_primal_terms(
    encoder: nn.Module,
    decoder: nn.Module,
    adaptive_contrast: bool,
    x: torch.Tensor,
    eps: torch.Tensor,
    moment_eps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(the adversary's view of z, log r(z) - log p(z), -log p(x|z)): everything AVB needs from encoder and decoder."""
    z, z_view, correction = encoder_contrast_inputs(encoder, adaptive_contrast, x, eps, moment_eps)
    return z_view, correction, decoder.nll(x, z)


def avb_losses_from_terms(
    terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    adversary: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    z_contrast: torch.Tensor,
    loss_scale: float = 1.0,
) -> Losses:
    """AVB's losses from :func:`avb_primal_terms` and the adversary T(x, z)."""
    z_view, correction, rec = terms
    t_q = adversary(x, z_view)
    t_p = adversary(x, z_contrast)
    kl = t_q + correction  # T estimates log q - log r; adding log r - log p gives log q - log p
    primal = loss_scale * (rec + kl).mean()
    return Losses(primal, adversary_loss(t_q, t_p), rec.detach(), kl.detach())


def avb_losses(
    model: AVBModel, x: torch.Tensor, eps: torch.Tensor, z_contrast: torch.Tensor, loss_scale: float = 1.0
) -> Losses:
    """AVB / AVB+AC losses on one minibatch (x, encoder noise eps, contrast samples z_contrast ~ N(0, I))."""
    assert model.adversary is not None
    terms = avb_primal_terms(model.encoder, model.decoder, model.adaptive_contrast, x, eps)
    return avb_losses_from_terms(terms, model.adversary, x, z_contrast, loss_scale)


def adversary_only_loss(
    model: AVBModel,
    x: torch.Tensor,
    eps: torch.Tensor,
    z_contrast: torch.Tensor,
    adversary: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    moment_eps: torch.Tensor | None = None,
) -> torch.Tensor:
    """The adversary's loss with the encoder held fixed (extra adversary steps); ``adversary`` defaults to the
    model's own (the trainer passes its DDP-wrapped one)."""
    assert model.adversary is not None
    adversary = adversary or model.adversary
    with torch.no_grad():
        _, z_view, _ = contrast_inputs(model, x, eps, moment_eps)
    return adversary_loss(adversary(x, z_view), adversary(x, z_contrast))


def gaussian_kl(mu: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, I)) per row, analytic: 1/2 sum(-1 - 2 log sigma + sigma^2 + mu^2)."""
    return 0.5 * (-1.0 - 2.0 * log_sigma + (2.0 * log_sigma).exp() + mu.square()).sum(1)


def vae_terms(
    encoder: nn.Module, decoder: nn.Module, x: torch.Tensor, eps: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(-log p(x|z), analytic KL) per example, z reparameterised with the given noise."""
    mu, log_sigma = (t.to(x.dtype) for t in encoder.gaussian(x))
    z = mu + log_sigma.exp() * eps
    return decoder.nll(x, z), gaussian_kl(mu, log_sigma)


def vae_losses_from_terms(terms: tuple[torch.Tensor, torch.Tensor], loss_scale: float = 1.0) -> Losses:
    rec, kl = terms
    return Losses(loss_scale * (rec + kl).mean(), None, rec.detach(), kl.detach())


def vae_losses(model: AVBModel, x: torch.Tensor, eps: torch.Tensor, loss_scale: float = 1.0) -> Losses:
    """The VAE's negative ELBO with the analytic KL, reparameterised with the given noise."""
    return vae_losses_from_terms(vae_terms(model.encoder, model.decoder, x, eps), loss_scale)
