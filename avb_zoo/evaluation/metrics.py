"""Per-example metrics of a model on a batch: ELBO, reconstruction error, IW bound, AIS and exact log p(x).

Every random draw of an example comes from a generator keyed by (seed, example index, purpose), so the
numbers do not depend on the batch an example is evaluated in.

* ELBO = -rec - KL. For AVB the KL is the adversary's estimate T + log r - log p: an estimate, not a bound.
  Its Adaptive Contrast moments come from ``encoder_moments``: the model's one keyed estimate of its
  basis moments (not the batch's own noise, which would tie an example's value to its batch-mates). For the
  VAE the KL is analytic.
* Reconstruction error = -log p(x|z) for one z ~ q(z|x), summed over pixels (nats).
* Importance-weighted bound (VAE): log mean_s p(x, z_s) / q(z_s|x), z_s ~ q(z|x).
* AIS from q0 = the AC moments (AVB+AC, sigma0 = sqrt(Var + 1e-4); the same ``encoder_moments``), the
  prior (AVB) or the encoder's Gaussian (VAE), as in the authors' protocol.
"""

from __future__ import annotations

import math

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.errors import shown
from avb_zoo.evaluation.ais import AISResult, AISSettings, Gaussian, run_ais, standard_normal_log_prob
from avb_zoo.modelling.model import BASIS_MOMENT_DRAWS, BASIS_MOMENT_KEY, AVBModel
from avb_zoo.modelling.objectives import LOG_2PI, VARIANCE_FLOOR, gaussian_kl, log_standard_normal

IW_CHUNK = 64


def keyed_rows(indices: list[int], seed: int, purpose: str, draw) -> torch.Tensor:
    """Stack ``draw(generator)`` over examples, each with the generator keyed by (seed, index, purpose)."""
    return torch.cat([draw(keyed_generator(seed, idx, purpose)) for idx in indices])


def initial_distribution(model: AVBModel, x: torch.Tensor, seed: int = 0) -> Gaussian:
    """AIS's q0 for this model, per the authors: AC moments, the prior, or the VAE encoder's Gaussian."""
    if model.method == "vae":
        mu, log_sigma = model.encoder.gaussian(x)
        return Gaussian(mu, log_sigma.exp())
    if model.method == "avb-ac":
        mean, var = model.encoder_moments(x)
        return Gaussian(mean, (var + VARIANCE_FLOOR).sqrt())
    shape = (x.shape[0], model.latent_dim)
    zeros = torch.zeros(shape, device=x.device, dtype=next(model.parameters()).dtype)
    return Gaussian(zeros, torch.ones_like(zeros))


def q0_description(method: str) -> str:
    return {
        "vae": "the encoder's Gaussian q(z|x)",
        "avb-ac": (
            f"N(E[z|x], Var[z|x] + {VARIANCE_FLOOR:g}), AC moments from the model's basis-moment estimate "
            f"({BASIS_MOMENT_DRAWS} noise draws keyed {shown(BASIS_MOMENT_KEY)}; the moments.onnx constants)"
        ),
        "avb": "the prior N(0, I)",
    }[method]


def model_log_likelihood(model: AVBModel, x: torch.Tensor):
    """log p(x_b | z_bk) for z [B, K, d] -> [B, K], through the model's decoder.

    The images repeated once per chain are made once per chain count, not at every one of AIS's thousands of
    calls (a copy as large as the decoder's output)."""
    repeated: dict[int, torch.Tensor] = {}

    def log_likelihood(z: torch.Tensor) -> torch.Tensor:
        batch, chains, dim = z.shape
        if chains not in repeated:
            repeated[chains] = x.repeat_interleave(chains, dim=0)
        return -model.nll(repeated[chains], z.reshape(batch * chains, dim)).view(batch, chains)

    return log_likelihood


@torch.no_grad()
def ais_log_likelihood(
    model: AVBModel, x: torch.Tensor, indices: list[int], settings: AISSettings, seed: int
) -> AISResult:
    """log p(x) per example by AIS (see avb_zoo.evaluation.ais)."""
    q0 = initial_distribution(model, x, seed)
    return run_ais(model_log_likelihood(model, x), q0, settings, seed, indices)


def encoder_noise(model: AVBModel, indices: list[int], seed: int, samples: int = 1) -> torch.Tensor:
    """Encoder noise [B * samples, noise_dim], example-major, keyed by (seed, example index, "eps")."""
    return keyed_rows(indices, seed, "eps", lambda g: model.sample_noise(samples, g))


@torch.no_grad()
def elbo_terms(
    model: AVBModel, x: torch.Tensor, indices: list[int], seed: int, samples: int = 1
) -> dict[str, torch.Tensor]:
    """Per-example reconstruction error and KL, each averaged over ``samples`` draws z ~ q(z|x).

    The KL is analytic for the VAE and the adversary's estimate for AVB. Returns {"reconstruction_error",
    "kl", "elbo"}; "kl" and "elbo" are absent when an AVB model has no adversary to estimate the KL.
    """
    batch = x.shape[0]
    x_rep = x.repeat_interleave(samples, dim=0)
    eps = encoder_noise(model, indices, seed, samples)
    if model.method == "vae":
        mu, log_sigma = model.encoder.gaussian(x)
        z = mu.repeat_interleave(samples, 0) + log_sigma.exp().repeat_interleave(samples, 0) * eps
        kl = gaussian_kl(mu, log_sigma)
    else:
        z = model.encode(x_rep, eps=eps)
        kl = adversary_kl(model, x_rep, z, seed).view(batch, samples).mean(1) if model.adversary is not None else None
    rec = model.nll(x_rep, z).view(batch, samples).mean(1)
    out = {"reconstruction_error": rec}
    if kl is not None:
        out.update(kl=kl, elbo=-(rec + kl))
    return out


def adversary_kl(model: AVBModel, x: torch.Tensor, z: torch.Tensor, seed: int) -> torch.Tensor:
    """The adversary's estimate of log q(z|x) - log p(z) at z (with Adaptive Contrast where the model has it)."""
    adversary = model.require_adversary("the ELBO estimate")
    if not model.adaptive_contrast:
        return adversary(x, z)
    mean, var = model.encoder_moments(x)
    s2 = var + VARIANCE_FLOOR
    z_tilde = (z - mean) / s2.sqrt()
    log_r = -0.5 * (z_tilde.square() + s2.log() + LOG_2PI).sum(1)
    return adversary(x, z_tilde) + log_r - log_standard_normal(z)


@torch.no_grad()
def importance_weighted_bound(
    model: AVBModel, x: torch.Tensor, indices: list[int], seed: int, samples: int
) -> torch.Tensor:
    """The VAE's importance-weighted bound log mean_s p(x|z_s) p(z_s) / q(z_s|x) per example [B]."""
    mu, log_sigma = model.encoder.gaussian(x)
    batch, dim = mu.shape
    noise = keyed_rows(indices, seed, "iw", lambda g: torch.randn(1, samples, dim, generator=g))
    noise = noise.to(device=mu.device, dtype=mu.dtype)
    log_likelihood = model_log_likelihood(model, x)
    parts = []
    for start in range(0, samples, IW_CHUNK):  # bounded memory: IW_CHUNK decoder passes per example at a time
        u = noise[:, start : start + IW_CHUNK]
        z = mu.unsqueeze(1) + log_sigma.exp().unsqueeze(1) * u
        log_q = (-0.5 * (u.square() + LOG_2PI) - log_sigma.unsqueeze(1)).sum(-1)
        parts.append((log_likelihood(z) + standard_normal_log_prob(z) - log_q).double())
    return torch.logsumexp(torch.cat(parts, dim=1), dim=1) - math.log(samples)
