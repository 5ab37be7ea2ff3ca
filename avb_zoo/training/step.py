"""One training iteration of Algorithm 1 (or the VAE), as a function of (minibatch, step) alone.

AVB: the primal loss is differentiated only with respect to encoder and decoder parameters and the
adversary loss only with respect to the adversary; both Adam updates then happen together, on the same
minibatch (the reference code's simultaneous update). ``adversary_steps > 1`` adds adversary-only updates
on fresh noise for the same minibatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avb_zoo.model import AVBModel
from avb_zoo.objectives import Losses, adversary_only_loss, avb_losses, vae_losses
from avb_zoo.recipes import TrainSettings
from avb_zoo.rng import keyed_generator


@dataclass
class StepResult:
    """What one step reports (floats, already synchronised)."""

    primal: float
    adversary: float
    elbo: float
    rec: float

    def finite(self) -> bool:
        return all(torch.isfinite(torch.tensor([self.primal, self.adversary, self.elbo])).tolist())


def make_optimizers(model: AVBModel, settings: TrainSettings) -> dict[str, torch.optim.Optimizer]:
    """Adam for the encoder+decoder ("primal") and, for AVB, a second Adam for the adversary."""
    primal = [p for p in (*model.encoder.parameters(), *model.decoder.parameters()) if p.requires_grad]
    optimizers = {"primal": torch.optim.Adam(primal, lr=settings.lr_primal, betas=settings.betas_primal)}
    if model.adversary is not None:
        optimizers["adversary"] = torch.optim.Adam(
            model.adversary.parameters(), lr=settings.lr_adversary, betas=settings.betas_adversary
        )
    return optimizers


def draw_noise(
    model: AVBModel, seed: int, step: int, batch_size: int, sub: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder noise and contrast samples of a step, keyed by (seed, step[, sub-step])."""
    eps = model.sample_noise(batch_size, keyed_generator(seed, step, sub, "eps"))
    z_contrast = model.sample_prior(batch_size, keyed_generator(seed, step, sub, "contrast"))
    return eps, z_contrast


def _set_grads(params: list[torch.nn.Parameter], loss: torch.Tensor, retain: bool) -> None:
    grads = torch.autograd.grad(loss, params, retain_graph=retain, allow_unused=True)
    for p, g in zip(params, grads, strict=True):
        p.grad = g


def compute_losses(model: AVBModel, x: torch.Tensor, seed: int, step: int, settings: TrainSettings) -> Losses:
    eps, z_contrast = draw_noise(model, seed, step, x.shape[0])
    if model.method == "vae":
        return vae_losses(model, x, eps, settings.loss_scale)
    return avb_losses(model, x, eps, z_contrast, settings.loss_scale)


def train_step(
    model: AVBModel,
    optimizers: dict[str, torch.optim.Optimizer],
    x: torch.Tensor,
    seed: int,
    step: int,
    settings: TrainSettings,
) -> StepResult:
    """One iteration; returns the losses. Nothing is updated when a loss is not finite."""
    losses = compute_losses(model, x, seed, step, settings)
    result = StepResult(
        primal=losses.primal.item(),
        adversary=losses.adversary.item() if losses.adversary is not None else 0.0,
        elbo=losses.elbo.mean().item(),
        rec=losses.rec.mean().item(),
    )
    if not result.finite():
        return result
    primal_params = optimizers["primal"].param_groups[0]["params"]
    _set_grads(primal_params, losses.primal, retain=losses.adversary is not None)
    if losses.adversary is not None:
        _set_grads(optimizers["adversary"].param_groups[0]["params"], losses.adversary, retain=False)
        optimizers["adversary"].step()
    optimizers["primal"].step()
    for sub in range(1, settings.adversary_steps if model.adversary is not None else 1):
        eps, z_contrast = draw_noise(model, seed, step, x.shape[0], sub)
        loss = adversary_only_loss(model, x, eps, z_contrast)
        _set_grads(optimizers["adversary"].param_groups[0]["params"], loss, retain=False)
        optimizers["adversary"].step()
    return result
