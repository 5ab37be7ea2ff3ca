"""Images in, checked: .npy arrays or image files (any format Pillow reads) to float32 [N, x_dim] in [0, 1].

Accepted arrays: [N, x_dim], [N, H, W] (one channel) or [N, C, H, W]; floats in [0, 1] or uint8 0-255 (divided
by 255); booleans as 0/1. Anything else (other dtypes, NaN or infinities, values outside the range, no images)
raises InputError naming the problem. ``.npy`` files are read without pickle.
"""

from __future__ import annotations

import math
import os
import stat
import warnings
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from avb_zoo.errors import InputError, InputWarning
from avb_zoo.runtime.limits import MAX_IMAGE_PIXELS, MAX_INPUT_BYTES

MAX_NPY_HEADER = 10_000  # numpy's own default limit on a .npy header's length

FLOAT_KINDS = (np.float16, np.float32, np.float64)


def as_model_input(x: np.ndarray, image_shape: tuple[int, int, int], source: str = "input") -> np.ndarray:
    """``x`` checked and converted to C-contiguous float32 [N, C*H*W] in [0, 1]."""
    x = np.asarray(x)
    c, h, w = image_shape
    x_dim = c * h * w
    allowed = [(x_dim,), (c, h, w)] + ([(h, w)] if c == 1 else [])
    if x.ndim < 2 or tuple(x.shape[1:]) not in allowed:
        shapes = " or ".join("N x " + " x ".join(map(str, s)) for s in allowed)
        raise InputError(f"{source} has shape {list(x.shape)}; expected {shapes}")
    if x.shape[0] == 0:
        raise InputError(f"{source} holds no images")
    if x.dtype == np.uint8:
        out = x.reshape(len(x), x_dim).astype(np.float32) / np.float32(255)
    elif x.dtype == np.bool_:
        out = x.reshape(len(x), x_dim).astype(np.float32)
    elif x.dtype.type in FLOAT_KINDS:
        out = x.reshape(len(x), x_dim).astype(np.float32)
        bad = ~np.isfinite(out)
        if bad.any():
            row = int(np.argwhere(bad)[0][0])
            raise InputError(f"{source} holds {int(bad.sum())} NaN or infinite value(s) (first in image {row})")
        low, high = float(out.min()), float(out.max())
        if low < 0.0 or high > 1.0:
            raise InputError(f"{source} has values in [{low:g}, {high:g}]; float images must lie in [0, 1]")
    else:
        raise InputError(f"{source} has dtype {x.dtype}; expected float values in [0, 1] or uint8 0-255")
    return np.ascontiguousarray(out)


def _check_npy_header(fh: BinaryIO, path: Path) -> None:
    """The array a .npy header declares must fit MAX_INPUT_BYTES and the file: checked before numpy allocates it."""
    if fh.read(6) != b"\x93NUMPY":
        raise InputError(f"{path} is not a readable .npy array (no .npy header)")
    fh.seek(0)
    version = np.lib.format.read_magic(fh)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise InputError(f"{path} is a .npy file of format version {version}; plain arrays are 1.0 or 2.0")
    try:
        shape, _, dtype = readers[version](fh, max_header_size=MAX_NPY_HEADER)
    except ValueError as err:  # numpy's words for a too long header advise allow_pickle: not for a user here
        text = str(err)
        why = f"its header is longer than {MAX_NPY_HEADER:,} bytes" if "max_header_size" in text else text
        raise InputError(f"{path} is not a readable .npy array: {why}") from None
    if dtype.hasobject:
        raise InputError(f"{path} holds Python objects; only plain numeric arrays are read")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > MAX_INPUT_BYTES:
        raise InputError(
            f"{path} declares a {dtype} array of shape {list(shape)}, {nbytes:,} bytes; inputs are at most "
            f"{MAX_INPUT_BYTES:,} bytes: split it"
        )
    left = os.fstat(fh.fileno()).st_size - fh.tell()
    if nbytes > left:
        raise InputError(f"{path} is truncated: its header declares {nbytes:,} bytes of data, the file holds {left:,}")


def _read_npy(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise InputError(f"{path} is not a regular file (a device, pipe or socket)")
            _check_npy_header(fh, path)
            fh.seek(0)
            return np.load(fh, allow_pickle=False)
    except ValueError as err:
        if "pickle" in str(err).lower():
            raise InputError(f"{path} holds Python objects; only plain numeric arrays are read") from None
        raise InputError(f"{path} is not a readable .npy array: {err}") from None
    except (OSError, EOFError) as err:
        raise InputError(f"{path} is not a readable .npy array: {err}") from None


HIGH_DEPTH_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}
INVERTED_BORDER = 0.5  # MNIST digits are white on black: a border brighter than this is a white background


def _warn(message: str) -> None:
    warnings.warn(message, InputWarning, stacklevel=3)


def _has_transparency(img: Any) -> bool:
    return img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)


def _grey_levels(img: Any, path: Path) -> np.ndarray:
    """float32 [H, W] in [0, 1] from any Pillow image: 16-bit grey scaled by 65535 (never clipped), colour made
    grey (luma). An image with transparent pixels is a drawing on a transparent sheet: its opacity is the ink,
    white on black as the models expect, whatever colour the strokes are (laid over white, a white digit on a
    transparent background would vanish)."""
    if img.mode in HIGH_DEPTH_MODES:
        levels = np.asarray(img, dtype=np.float64)
        top = HIGH_DEPTH_MODES[img.mode]
        if levels.size and (levels.min() < 0 or levels.max() > top):
            raise InputError(
                f"{path} holds {img.mode} values in [{levels.min():g}, {levels.max():g}]; "
                f"only 8-bit and 16-bit images (0..{top}) are read"
            )
        return (levels / top).astype(np.float32)
    if img.mode == "F":
        levels = np.asarray(img, dtype=np.float32)
        if not np.isfinite(levels).all() or levels.min() < 0 or levels.max() > 1:
            raise InputError(f"{path} is a floating-point image with values outside [0, 1]; refused")
        return levels
    if _has_transparency(img):
        alpha = np.asarray(img.convert("RGBA"), dtype=np.float32)[..., 3] / np.float32(255)
        if alpha.size and alpha.min() < 1.0:
            return alpha
    return np.asarray(img.convert("L"), dtype=np.float32) / np.float32(255)


def _read_image(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """float32 [C, H, W] in [0, 1] from any image Pillow reads; other sizes and modes are converted with a
    warning (grey models only; an RGB model needs RGB images of its size)."""
    from PIL import Image, UnidentifiedImageError

    c, h, w = image_shape
    try:
        with Image.open(path) as img:
            width, height = img.size  # from the header: checked before the pixels are decoded
            if width * height > MAX_IMAGE_PIXELS:
                raise InputError(
                    f"{path} declares {width:,}x{height:,} = {width * height:,} pixels; input images are at most "
                    f"{MAX_IMAGE_PIXELS:,} pixels"
                )
            img.load()
            if c != 1:
                if img.size != (w, h):
                    raise InputError(f"{path} is {img.size[0]}x{img.size[1]} pixels; the model takes {w}x{h}")
                return np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
            notes = []
            if _has_transparency(img):
                notes.append(f"{img.mode} read as ink where opaque")
            elif img.mode not in ("L", "1", *HIGH_DEPTH_MODES):
                notes.append(f"{img.mode} made grey")
            levels = _grey_levels(img, path)
            if levels.shape != (h, w):
                notes.append(f"{levels.shape[1]}x{levels.shape[0]} resized to {w}x{h}")
                resized = Image.fromarray(levels, mode="F").resize((w, h), Image.Resampling.LANCZOS)
                levels = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    except UnidentifiedImageError:
        raise InputError(f"{path} is not an image Pillow can read") from None
    except Image.DecompressionBombError as err:  # Pillow's own pixel limit, met before ours
        raise InputError(f"{path} is refused: {err}") from None
    except (OSError, ValueError) as err:
        raise InputError(f"{path} is not an image Pillow can read: {err}") from None
    if notes:
        _warn(f"{path}: {', '.join(notes)}")
    return levels[None]


def _warn_inverted(x: np.ndarray, image_shape: tuple[int, int, int], source: str) -> None:
    """Warn when images look inverted: a bright border means dark ink on white, not MNIST's white on black."""
    c, h, w = image_shape
    if c != 1 or h < 3 or w < 3:
        return
    tiles = x.reshape(len(x), h, w)
    border = np.concatenate([tiles[:, 0], tiles[:, -1], tiles[:, 1:-1, 0], tiles[:, 1:-1, -1]], axis=1).mean(axis=1)
    bright = np.flatnonzero(border > INVERTED_BORDER)
    if bright.size:
        which = ", ".join(map(str, bright[:5])) + (", ..." if bright.size > 5 else "")
        _warn(
            f"{source}: {bright.size} of {len(x)} image(s) look inverted (white background; image {which}); "
            "the models expect white digits on black: pass --invert (or use 1 - x, 255 - pixels)"
        )


def load_images(path: str | Path, image_shape: tuple[int, int, int], invert: bool = False) -> np.ndarray:
    """float32 [N, C*H*W] in [0, 1] from a .npy file, an image file Pillow reads (PNG, JPEG, ...), or a folder
    of image files (in name order; other files in it are named in an InputWarning, not read). Grey models take
    images of any size and mode (converted, with an InputWarning); images that look inverted (white background)
    are taken with an InputWarning. ``invert`` takes 1 - x (dark ink on white paper made MNIST's white on black)."""
    path = Path(path)
    if path.is_dir():
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
        files = [p for p in entries if p.suffix.lower() in _readable_suffixes() and p.is_file()]
        skipped = [p.name for p in entries if p not in files]
        if not files:
            raise InputError(f"{path} holds no image files (.png, .jpg, ...)")
        if skipped:
            listed = ", ".join(skipped[:5]) + (f" and {len(skipped) - 5} more" if len(skipped) > 5 else "")
            what = "entry" if len(skipped) == 1 else "entries"
            _warn(f"{path}: skipped {len(skipped)} {what} that are no image files: {listed}")
        x = as_model_input(np.stack([_read_image(p, image_shape) for p in files]), image_shape, str(path))
    elif not path.is_file():
        raise InputError(f"{path} is not a regular file" if path.exists() else f"{path} does not exist")
    elif path.suffix.lower() == ".npy":
        x = as_model_input(_read_npy(path), image_shape, str(path))
    elif path.suffix.lower() in _readable_suffixes():
        x = as_model_input(_read_image(path, image_shape)[None], image_shape, str(path))
    else:
        raise InputError(f"{path}: expected a .npy array, an image file (.png, .jpg, ...) or a folder of images")
    if invert:
        x = np.float32(1.0) - x
    _warn_inverted(x, image_shape, str(path))
    return x


def _readable_suffixes() -> set[str]:
    """Extensions of the image formats this Pillow opens."""
    from PIL import Image

    Image.init()
    return {ext.lower() for ext, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}
