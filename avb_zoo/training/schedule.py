"""The learning-rate schedule of a recipe: constant, or a decay to zero over the last part of training.

One definition, written twice with the same arithmetic: on Python numbers for the eager and stacked
steps, and on a step tensor for the fast step (compiled programs and CUDA graphs read the step from the
device, so its learning rate must be computed there too).
"""

from __future__ import annotations

import math

import torch

from avb_zoo.catalogue.recipes import TrainSettings


def lr_factor(settings: TrainSettings, step: int) -> float:
    """The multiplier of the base learning rates at ``step`` (0-based): 1 before the decay starts, then
    down to 0 at ``settings.steps`` (linear or half a cosine)."""
    if settings.lr_schedule == "constant":
        return 1.0
    start = settings.lr_decay_start * settings.steps
    if step < start:
        return 1.0
    u = min((step - start) / max(settings.steps - start, 1.0), 1.0)
    return 1.0 - u if settings.lr_schedule == "linear" else 0.5 * (1.0 + math.cos(math.pi * u))


def lr_factor_tensor(settings: TrainSettings, step: torch.Tensor) -> torch.Tensor | None:
    """:func:`lr_factor` of a step held in a tensor (float64 arithmetic); None for a constant schedule."""
    if settings.lr_schedule == "constant":
        return None
    start = settings.lr_decay_start * settings.steps
    u = ((step.double() - start) / max(settings.steps - start, 1.0)).clamp(0.0, 1.0)
    return 1.0 - u if settings.lr_schedule == "linear" else 0.5 * (1.0 + torch.cos(math.pi * u))


def base_lrs(settings: TrainSettings) -> dict[str, float]:
    """Each player's learning rate before the schedule."""
    return {"primal": settings.lr_primal, "adversary": settings.lr_adversary}


def set_lrs(optimizers: dict[str, torch.optim.Optimizer], settings: TrainSettings, step: int) -> None:
    """Put the scheduled learning rate of ``step`` into each torch optimiser (restored ones included)."""
    factor = lr_factor(settings, step)
    for name, optimizer in optimizers.items():
        for group in optimizer.param_groups:
            group["lr"] = base_lrs(settings)[name] * factor
