"""One training iteration of Algorithm 1 (or the VAE), as a function of (minibatch, step) alone.

AVB: the primal loss is differentiated only with respect to encoder and decoder parameters and the
adversary loss only with respect to the adversary; both Adam updates then happen together, on the same
minibatch (the reference code's simultaneous update). ``adversary_steps > 1`` adds adversary-only updates
on fresh noise for the same minibatch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from avb_zoo.catalogue.recipes import TrainSettings
from avb_zoo.compute.distributed import World, mean_over_ranks
from avb_zoo.compute.precision import autocast
from avb_zoo.compute.rng import keyed_generator
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.objectives import (
    Losses,
    adversary_only_loss,
    avb_losses_from_terms,
    vae_losses_from_terms,
)
from avb_zoo.training.players import Players, make_players
from avb_zoo.training.schedule import set_lrs


@dataclass
class StepResult:
    """What one step reports: the global batch's losses (means over ranks of each rank's means)."""

    primal: float
    adversary: float
    elbo: float
    rec: float

    def finite(self) -> bool:
        return all(torch.isfinite(torch.tensor([self.primal, self.adversary, self.elbo])).tolist())


def make_optimizers(model: AVBModel, settings: TrainSettings) -> dict[str, torch.optim.Optimizer]:
    """Adam for the encoder+decoder ("primal") and, for AVB, a second Adam for the adversary.

    torch's fused Adam (one kernel over all parameters, the same update as its per-tensor loop to rounding)
    where the device has it: on the CPU the per-tensor loop costs ~15% of a toy step in Python and launches.
    """
    if model.method != "vae":
        model.require_adversary("training an AVB model")
    fused = {"fused": True} if _fused_adam_runs(model) else {}
    primal = [p for p in (*model.encoder.parameters(), *model.decoder.parameters()) if p.requires_grad]
    optimizers = {"primal": torch.optim.Adam(primal, lr=settings.lr_primal, betas=settings.betas_primal, **fused)}
    if model.adversary is not None:
        optimizers["adversary"] = torch.optim.Adam(
            model.adversary.parameters(), lr=settings.lr_adversary, betas=settings.betas_adversary, **fused
        )
    return optimizers


def _fused_adam_runs(model: AVBModel) -> bool:
    """Whether torch's fused Adam supports this model's parameters (CPU or CUDA, floating point)."""
    params = list(model.parameters())
    return bool(params) and all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in params)


def draw_noise(
    model: AVBModel, seed: int, step: int, batch_size: int, sub: int = 0, rows: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """(encoder noise, contrast samples, moment noise) of a step, keyed by (seed, step[, sub-step]).

    Drawn for the whole global batch of ``batch_size`` rows and cut to ``rows`` (this rank's share), so every
    example sees the same noise whatever the number of processes. The moment noise is the global batch's
    encoder noise when ``rows`` is a share of it (Adaptive Contrast estimates its moments from a batch of
    noise; the whole batch's keeps them independent of the number of processes), else None (``eps`` itself).
    """
    rows = rows or slice(0, batch_size)
    eps = model.sample_noise(batch_size, keyed_generator(seed, step, sub, "eps"))
    z_contrast = model.sample_prior(batch_size, keyed_generator(seed, step, sub, "contrast"))
    share = rows != slice(0, batch_size)
    return eps[rows], z_contrast[rows], eps if share else None


def _backward(loss: torch.Tensor, params: list[torch.nn.Parameter], retain: bool) -> None:
    """Gradients of ``loss`` into ``params`` alone (a DDP-wrapped player averages them across ranks here)."""
    for p in params:
        p.grad = None
    loss.backward(inputs=params, retain_graph=retain)


def compute_losses(
    model: AVBModel,
    players: Players,
    x: torch.Tensor,
    seed: int,
    step: int,
    settings: TrainSettings,
    rows: slice | None = None,
) -> Losses:
    """The step's losses on this rank's rows ``x`` (``rows`` of the global batch of ``settings.batch_size``)."""
    eps, z_contrast, moment_eps = draw_noise(model, seed, step, settings.batch_size, rows=rows)
    terms = players.primal(x, eps, moment_eps)
    if model.method == "vae":
        return vae_losses_from_terms(terms, settings.loss_scale)
    assert players.adversary is not None
    return avb_losses_from_terms(terms, players.adversary, x, z_contrast, settings.loss_scale)


def train_step(
    model: AVBModel,
    optimizers: dict[str, torch.optim.Optimizer],
    x: torch.Tensor,
    seed: int,
    step: int,
    settings: TrainSettings,
    players: Players | None = None,
    world: World | None = None,
    precision: str = "float32",
) -> StepResult:
    """One iteration on this rank's share ``x`` of the step's global batch; returns the global batch's losses.

    Nothing is updated when a loss is not finite on any rank (every rank takes the same decision).
    ``precision`` bf16 runs the forward passes' matrix products in bf16 (backward passes follow them; losses
    and Adam stay in float32, see :mod:`avb_zoo.compute.precision`).
    """
    world = world or World()
    players = players or make_players(model, world)
    rows = world.shard(settings.batch_size)
    with autocast(x.device, precision):
        losses = compute_losses(model, players, x, seed, step, settings, rows)
    adversary_value = losses.adversary.detach() if losses.adversary is not None else losses.primal.new_zeros(())
    reported = torch.stack([losses.primal.detach(), adversary_value, losses.elbo.mean(), losses.rec.mean()])
    primal, adversary, elbo, rec = mean_over_ranks(reported, world).tolist()
    result = StepResult(primal=primal, adversary=adversary, elbo=elbo, rec=rec)
    if not result.finite():
        return result
    set_lrs(optimizers, settings, step)
    primal_params = optimizers["primal"].param_groups[0]["params"]
    _backward(losses.primal, primal_params, retain=losses.adversary is not None)
    if losses.adversary is not None:
        _backward(losses.adversary, optimizers["adversary"].param_groups[0]["params"], retain=False)
        optimizers["adversary"].step()
    optimizers["primal"].step()
    for sub in range(1, settings.adversary_steps if model.adversary is not None else 1):
        assert players.adversary is not None
        eps, z_contrast, moment_eps = draw_noise(model, seed, step, settings.batch_size, sub, rows)
        with autocast(x.device, precision):
            loss = adversary_only_loss(model, x, eps, z_contrast, players.adversary, moment_eps)
        _backward(loss, optimizers["adversary"].param_groups[0]["params"], retain=False)
        optimizers["adversary"].step()
    return result
