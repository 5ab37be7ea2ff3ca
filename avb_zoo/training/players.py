"""The two players of AVB as modules of their own, wrapped in DistributedDataParallel when the run has ranks.

The primal player (encoder + decoder) and the adversary have separate optimisers and separate backward
passes, so each is its own DDP module: the primal loss is back-propagated into the primal parameters only
and the adversary loss into the adversary only (``backward(inputs=...)``), and each DDP module all-reduces
(averages) its gradients exactly once per backward pass. Every rank computes its losses as means over its
equal share of the global batch, so the averaged gradient is the global batch's gradient. In a world of one
the same modules run unwrapped, through the same code.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from avb_zoo.compute.distributed import World
from avb_zoo.errors import ConfigError
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.objectives import avb_primal_terms, vae_terms


class PrimalPlayer(nn.Module):
    """Encoder and decoder: returns the per-example terms the primal loss is made of."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module, method: str) -> None:
        super().__init__()
        self.encoder, self.decoder, self.method = encoder, decoder, method

    def forward(
        self, x: torch.Tensor, eps: torch.Tensor, moment_eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        if self.method == "vae":
            return vae_terms(self.encoder, self.decoder, x, eps)
        return avb_primal_terms(self.encoder, self.decoder, self.method == "avb-ac", x, eps, moment_eps)


@dataclass
class Players:
    """What a training step calls: ``primal(x, eps)`` and ``adversary(x, z)`` (DDP-wrapped or plain)."""

    primal: nn.Module
    adversary: nn.Module | None


def _wrap(module: nn.Module, world: World, device: torch.device) -> nn.Module:
    if not world.distributed:
        return module
    device_ids = [device.index] if device.type == "cuda" and device.index is not None else None
    # buffers are constants here (no batch norm, see make_players): synced once at construction, never again
    return DistributedDataParallel(module, device_ids=device_ids, forward_sync_buffers=False)


def make_players(model: AVBModel, world: World) -> Players:
    """The model's players, each wrapped for ``world`` (construction is collective: every rank must call it)."""
    if world.distributed and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        raise ConfigError(
            "this model uses batch normalisation, whose statistics would depend on how the batch is split "
            "across processes; train it in one process"
        )
    device = model.device
    primal = _wrap(PrimalPlayer(model.encoder, model.decoder, model.method), world, device)
    adversary = None if model.adversary is None else _wrap(model.adversary, world, device)
    return Players(primal, adversary)
