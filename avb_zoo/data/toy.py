"""The paper's toy data: four 2x2 binary images, each with one pixel on (x = one_hot(k, 4), k ~ U{0..3}).

Small enough that the optimum (log-likelihood -log 4) is known, which makes it the first sanity check of
any AVB/VAE objective.
"""

from __future__ import annotations

import torch

TOY_POINTS = torch.eye(4, dtype=torch.float32)  # row k is one_hot(k, 4)


def sample_toy(batch: int, generator: torch.Generator) -> torch.Tensor:
    """A batch [B, 4] float32 (CPU) of toy points, the four equally likely, drawn with ``generator``."""
    if batch < 0:
        raise ValueError(f"batch must be >= 0, got {batch}")
    k = torch.randint(0, TOY_POINTS.shape[0], (batch,), generator=generator)
    return TOY_POINTS[k]  # advanced indexing copies: callers may modify the batch
