"""Minibatches keyed by (seed, step): the whole global batch of a step is a function of those two numbers.

Images are visited in epochs, each a permutation keyed by (seed, epoch); every read of an image draws a
fresh Bernoulli binarisation (the authors' dynamic binarisation) keyed by (seed, step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.errors import DataError, shown


class BatchSource(Protocol):
    x_dim: int

    def batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        """The global batch of ``step``: float32 [batch_size, x_dim] on the CPU."""
        ...


class ToyBatches:
    """The paper's toy data: one of four one-hot 2x2 images, uniformly at random."""

    x_dim = 4

    def batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        from avb_zoo.data.toy import sample_toy

        return sample_toy(batch_size, keyed_generator(seed, step, "data"))


class NoData:
    """Posterior inference (Eight Schools): the data live in the model's log-joint; x is empty."""

    x_dim = 0

    def batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, 0)


class ImageBatches:
    """Rows of an image array, in keyed epochs, binarised dynamically (uint8 0-255 or float in [0, 1])."""

    def __init__(self, images: torch.Tensor, binarize: bool = True) -> None:
        if images.ndim != 2 or images.shape[0] == 0:
            raise DataError(f"training images must be a non-empty [N, D] array, got shape {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            self.probs = images
            self.scale = 1.0 / 255.0
        else:
            images = images.float()
            if not torch.isfinite(images).all():
                raise DataError("training data contains NaN or infinite values")
            if images.min() < 0 or images.max() > 1:
                raise DataError(
                    f"training data must lie in [0, 1], got values from {images.min():.3g} to {images.max():.3g}"
                )
            self.probs = images
            self.scale = 1.0
        self.binarize = binarize
        self.n, self.x_dim = images.shape
        self._perms: dict[int, tuple[int, torch.Tensor]] = {}  # seed -> (epoch, its permutation)

    def _permutation(self, seed: int, epoch: int) -> torch.Tensor:
        """The epoch's order for this seed, cached per seed (one source can serve several seeds at once)."""
        cached = self._perms.get(seed)
        if cached is None or cached[0] != epoch:
            cached = (epoch, torch.randperm(self.n, generator=keyed_generator(seed, epoch, "epoch")))
            self._perms[seed] = cached
        return cached[1]

    def indices(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        """Row indices of the global batch: positions step*B .. (step+1)*B - 1 of the epoch sequence."""
        return self.indices_block(seed, step, 1, batch_size)[0]

    def indices_block(self, seed: int, start: int, steps: int, batch_size: int) -> torch.Tensor:
        """Row indices of the global batches of steps ``start .. start + steps - 1``: [steps, batch_size]."""
        positions = torch.arange(start * batch_size, (start + steps) * batch_size)
        epochs, offsets = positions // self.n, positions % self.n
        out = torch.empty(positions.shape[0], dtype=torch.long)
        for epoch in epochs.unique().tolist():
            mask = epochs == epoch
            out[mask] = self._permutation(seed, epoch)[offsets[mask]]
        return out.view(steps, batch_size)

    def batch(self, seed: int, step: int, batch_size: int) -> torch.Tensor:
        p = self.probs[self.indices(seed, step, batch_size)].float() * self.scale
        if not self.binarize:
            return p
        u = torch.rand(p.shape, generator=keyed_generator(seed, step, "binarize"))
        return (u <= p).float()


def make_batch_source(
    data: str, data_dir: str | Path | None = None, images: torch.Tensor | None = None, binarize: bool = True
) -> BatchSource:
    """The batches a recipe trains on; ``images`` (user data, [N, D] in [0, 1] or uint8) replaces MNIST."""
    if images is not None:
        from avb_zoo.training.options import training_images

        return ImageBatches(training_images(images), binarize)
    if data == "toy":
        return ToyBatches()
    if data == "eight-schools":
        return NoData()
    if data == "mnist":
        from avb_zoo.data.mnist import load_mnist, resolve_data_dir

        return ImageBatches(load_mnist(resolve_data_dir(data_dir), "train"), binarize)
    raise DataError(f"unknown data source {shown(data)}")
