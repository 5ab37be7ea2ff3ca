"""The sample grid a pushed model card shows (``samples.png``): 64 draws from the prior, seed 0.

Drawn by the exported sampler on onnxruntime when the folder has one (what users of the ONNX files get), else
by the torch model; either way the same seed gives the same picture for the same model.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

SAMPLES = 64


def sample_grid_png(folder: Path, config: dict[str, Any], model: Any, has_sampler: bool) -> bytes | None:
    """PNG bytes of the grid, or None for data that is not a picture (no data dimension as with a posterior
    sampler, or no image_shape and x_dim not a square)."""
    from avb_zoo.modelfile.layout import image_shape_of
    from avb_zoo.runtime.images import grid, png_bytes

    x_dim = int(config["x_dim"])
    if x_dim < 1 or (config.get("image_shape") is None and math.isqrt(x_dim) ** 2 != x_dim):  # x_dim 0: a posterior
        return None
    shape = image_shape_of(config)
    if has_sampler:
        from avb_zoo.runtime import Sampler

        images = Sampler(folder, providers="cpu").sample(SAMPLES, seed=0)
    else:
        import torch

        images = model.sample(SAMPLES, generator=torch.Generator().manual_seed(0)).float().cpu().numpy()
    return png_bytes(grid(images, shape, 8))
