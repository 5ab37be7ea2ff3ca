"""Images in, checked: .npy arrays or PNG files to float32 [N, x_dim] in [0, 1], or a clear error.

Accepted arrays: [N, x_dim], [N, H, W] (one channel) or [N, C, H, W]; floats in [0, 1] or uint8 0-255 (divided
by 255); booleans as 0/1. Anything else (other dtypes, NaN or infinities, values outside the range, no images)
raises InputError naming the problem. ``.npy`` files are read without pickle.
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import BinaryIO

import numpy as np

from avb_zoo.errors import InputError
from avb_zoo.runtime.limits import MAX_INPUT_BYTES

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


def _read_png(path: Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    c, h, w = image_shape
    try:
        with Image.open(path) as img:
            if img.format != "PNG":
                raise InputError(f"{path} is a {img.format} image; expected PNG")
            if img.size != (w, h):
                raise InputError(f"{path} is {img.size[0]}x{img.size[1]} pixels; the model takes {w}x{h}")
            pixels = np.asarray(img.convert("L" if c == 1 else "RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise InputError(f"{path} is not a readable PNG image: {err}") from None
    return pixels.reshape(h, w, c).transpose(2, 0, 1)


def load_images(path: str | Path, image_shape: tuple[int, int, int]) -> np.ndarray:
    """float32 [N, C*H*W] in [0, 1] from a .npy file, a PNG file, or a folder of PNG files (in name order)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        if not files:
            raise InputError(f"{path} holds no .png files")
        return as_model_input(np.stack([_read_png(p, image_shape) for p in files]), image_shape, str(path))
    if not path.is_file():
        raise InputError(f"{path} is not a regular file" if path.exists() else f"{path} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return as_model_input(_read_npy(path), image_shape, str(path))
    if suffix == ".png":
        return as_model_input(_read_png(path, image_shape)[None], image_shape, str(path))
    raise InputError(f"{path}: expected a .npy array, a .png image, or a folder of .png images")
