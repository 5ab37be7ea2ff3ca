"""The runtime's size limits, checked before anything is allocated, so a huge request fails in one line.

``sample -n``, ``encode --samples``, a config's sizes and a ``.npy`` header are all numbers a user (or a
hostile file) chooses; multiplied out they can ask for petabytes. Every array the runtime makes is checked
against these limits first. They lie far above what the zoo's models need (an MNIST grid of 65,536 samples
is 51 M values), and the README lists them.
"""

from __future__ import annotations

import math

from avb_zoo.errors import InputError
from avb_zoo.modelfile.config_file import MAX_DIM  # noqa: F401  (x_dim, latent_dim, noise_dim, image sides)

MAX_VALUES = 1 << 28  # values in one array a call makes: 268 M float32, 1 GiB
MAX_INPUT_BYTES = 1 << 30  # an input .npy array: 1 GiB
MAX_GRID_PIXELS = 1 << 27  # pixels of one image grid: 128 M (a 65,536-sample MNIST grid has 59 M)
MAX_IMAGE_PIXELS = 1 << 26  # pixels of one input image, read from its header before decoding: 8192 x 8192


def gib(nbytes: int) -> str:
    return f"{nbytes / (1 << 30):,.2f} GiB"


def check_values(shape: tuple[int, ...], what: str, hint: str) -> None:
    """Refuse an array of ``shape`` with more than MAX_VALUES values, before it is allocated."""
    count = math.prod(shape)
    if count > MAX_VALUES:
        dims = " x ".join(f"{n:,}" for n in shape)
        raise InputError(
            f"{what} would hold {dims} = {count:,} values ({gib(4 * count)}); the runtime makes at most "
            f"{MAX_VALUES:,} ({gib(4 * MAX_VALUES)}) in one call: {hint}"
        )


def check_grid(count: int, columns: int | None, image_shape: tuple[int, int, int], scale: int = 1) -> None:
    """An image grid of ``count`` tiles, enlarged ``scale`` times: at most ``count`` columns, at most
    MAX_GRID_PIXELS pixels."""
    if columns is not None and columns > count:
        raise InputError(f"--columns {columns:,} is more than the {count:,} image(s) of the grid")
    c, h, w = image_shape
    cols = columns or max(1, math.isqrt(count - 1) + 1)
    rows = -(-count // cols)
    pixels = rows * (h + 2) * cols * (w + 2) * c * scale * scale
    if pixels > MAX_GRID_PIXELS:
        at = f" at --scale {scale}" if scale > 1 else ""
        raise InputError(
            f"a grid of {count:,} images of {c}x{h}x{w} in {cols:,} columns{at} has {pixels:,} pixels; "
            f"at most {MAX_GRID_PIXELS:,}: draw fewer samples" + (" or use a smaller --scale" if scale > 1 else "")
        )
