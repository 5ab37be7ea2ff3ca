"""Image grids (Pillow) for samples and reconstructions."""

from __future__ import annotations

import io
import math

import numpy as np

from avb_zoo.runtime.limits import check_grid


def grid(images: np.ndarray, image_shape: tuple[int, int, int], columns: int | None = None, pad: int = 2) -> np.ndarray:
    """uint8 [rows*(H+pad)+pad, cols*(W+pad)+pad(, C)] tiling ``images`` ([N, C*H*W] in [0, 1]) row by row."""
    c, h, w = image_shape
    n = len(images)
    check_grid(n, columns, image_shape)
    cols = columns or max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    tiles = np.clip(np.asarray(images, dtype=np.float32).reshape(n, c, h, w), 0.0, 1.0)
    tiles = np.rint(tiles * 255).astype(np.uint8).transpose(0, 2, 3, 1)  # -> N, H, W, C
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i, tile in enumerate(tiles):
        r, k = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + k * (w + pad)
        canvas[top : top + h, left : left + w] = tile
    return canvas[..., 0] if c == 1 else canvas


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Interleave two image sets [N, D] as pairs [2N, D]: left_0, right_0, left_1, right_1, ..."""
    return np.stack([left, right], axis=1).reshape(2 * len(left), -1)


def png_bytes(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()
