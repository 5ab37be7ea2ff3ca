"""Image grids (Pillow) for samples and reconstructions, written in any format Pillow saves.

A grid can carry labels (column headings above, row numbers on the left) and be enlarged by an integer
``scale`` (nearest neighbour, so pixels stay sharp). The format follows the output's extension.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from avb_zoo.errors import OutputError, shown
from avb_zoo.runtime.limits import MAX_GRID_PIXELS, check_grid

MAX_SCALE = 32  # 28 px tiles at 32x are 896 px each; larger asks are a typo, not a wish


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


def grid_columns(n: int, columns: int | None = None) -> int:
    """The number of columns :func:`grid` uses for ``n`` images."""
    return min(columns, n) if columns else max(1, math.ceil(math.sqrt(n)))


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Interleave two image sets [N, D] as pairs [2N, D]: left_0, right_0, left_1, right_1, ..."""
    return np.stack([left, right], axis=1).reshape(2 * len(left), -1)


def check_scale(scale: int) -> int:
    """``scale`` if it is a whole number in 1..MAX_SCALE (checked before any work)."""
    if not isinstance(scale, int) or isinstance(scale, bool) or not 1 <= scale <= MAX_SCALE:
        raise OutputError(f"--scale must be a whole number from 1 to {MAX_SCALE}, got {shown(scale)}")
    return scale


def labelled(
    pixels: np.ndarray,
    tile: tuple[int, int],
    pad: int,
    column_labels: Sequence[str],
    row_labels: Sequence[str],
    scale: int = 1,
) -> np.ndarray:
    """``pixels`` (a :func:`grid`) enlarged ``scale`` times, with column headings above and row labels left.

    ``tile`` is (H, W) of one image before scaling; labels are drawn in black on the white margin, in
    Pillow's default font at a size that fits the scaled tiles.
    """
    from PIL import Image, ImageDraw, ImageFont

    scale = check_scale(scale)
    if pixels.size * scale * scale > MAX_GRID_PIXELS:  # checked before Pillow allocates the enlarged grid
        raise OutputError(
            f"the grid of {pixels.shape[1]}x{pixels.shape[0]} pixels at --scale {scale} would have "
            f"{pixels.size * scale * scale:,} values; at most {MAX_GRID_PIXELS:,}: draw fewer samples or use a "
            "smaller --scale"
        )
    img = Image.fromarray(pixels)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    if not column_labels and not row_labels:
        return np.asarray(img)
    h, w = tile[0] * scale, tile[1] * scale
    step_y, step_x = (tile[0] + pad) * scale, (tile[1] + pad) * scale
    size = max(8, min(h // 2, 12 * scale))
    font = ImageFont.load_default(size=size)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = probe.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    top = (max(text_size(t)[1] for t in column_labels) + 2 * scale + 2) if column_labels else 0
    left = (max(text_size(t)[0] for t in row_labels) + 3 * scale + 2) if row_labels else 0
    canvas = Image.new(img.mode, (img.width + left, img.height + top), 255 if img.mode == "L" else (255, 255, 255))
    canvas.paste(img, (left, top))
    draw = ImageDraw.Draw(canvas)
    ink = 0 if img.mode == "L" else (0, 0, 0)
    for k, text in enumerate(column_labels):
        tw, _ = text_size(text)
        x = left + pad * scale + k * step_x + (w - tw) // 2
        draw.text((x, 1), text, fill=ink, font=font)
    for r, text in enumerate(row_labels):
        tw, th = text_size(text)
        y = top + pad * scale + r * step_y + (h - th) // 2
        draw.text((left - tw - 2 * scale - 1, y), text, fill=ink, font=font)
    return np.asarray(canvas)


def sample_grid(
    images: np.ndarray, image_shape: tuple[int, int, int], columns: int | None, scale: int = 1, labels: bool = True
) -> np.ndarray:
    """Samples tiled row by row; labels: column numbers above, the index of each row's first sample left."""
    cols = grid_columns(len(images), columns)
    rows = math.ceil(len(images) / cols)
    pixels = grid(images, image_shape, cols)
    heads = [str(k) for k in range(cols)] if labels else []
    sides = [str(r * cols) for r in range(rows)] if labels else []
    return labelled(pixels, image_shape[1:], 2, heads, sides, scale)


def reconstruction_grid(
    x: np.ndarray, recon: np.ndarray, image_shape: tuple[int, int, int], scale: int = 1, labels: bool = True
) -> np.ndarray:
    """Pairs input | reconstruction; labels: "in" and "out" above each pair, each row's first index left."""
    pairs = max(1, math.ceil(math.sqrt(len(x))))
    rows = math.ceil(len(x) / pairs)
    pixels = grid(side_by_side(x, recon), image_shape, 2 * pairs)
    heads = ["in", "out"] * pairs if labels else []
    sides = [str(r * pairs) for r in range(rows)] if labels else []
    return labelled(pixels, image_shape[1:], 2, heads, sides, scale)


def writable_formats() -> dict[str, str]:
    """{extension: Pillow format} for every format this Pillow can save."""
    from PIL import Image

    Image.init()
    return {ext.lower(): fmt for ext, fmt in Image.registered_extensions().items() if fmt in Image.SAVE}


def check_image_path(path: str | Path, what: str = "--out") -> tuple[Path, str]:
    """(path, Pillow format) for an image output, by its extension; refused before any work is done."""
    path = Path(path)
    formats = writable_formats()
    fmt = formats.get(path.suffix.lower())
    if fmt is None:
        common = ", ".join(e for e in (".png", ".jpg", ".webp", ".gif", ".bmp", ".tiff", ".pdf") if e in formats)
        found = f"'{path.suffix}'" if path.suffix else "no extension"
        raise OutputError(f"{what} {path}: {found} is not an image format Pillow writes; use e.g. {common}")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder")
    return path, fmt


def image_bytes(pixels: np.ndarray, fmt: str = "PNG") -> bytes:
    """``pixels`` (uint8, grey or RGB) encoded in the Pillow format ``fmt``."""
    from PIL import Image

    buffer = io.BytesIO()
    try:
        Image.fromarray(pixels).save(buffer, format=fmt)
    except (OSError, ValueError, KeyError) as err:
        raise OutputError(f"Pillow cannot write this image as {fmt}: {err}") from None
    return buffer.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    return image_bytes(pixels, "PNG")
