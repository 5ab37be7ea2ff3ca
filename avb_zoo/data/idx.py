"""IDX files (the MNIST container format), read strictly and written atomically.

Strict because a truncated download or a wrong file must fail loudly at load time, not as a silent shape
error deep in training. Gzip is detected from the magic bytes, not the suffix, so renamed files still work.
"""

from __future__ import annotations

import gzip
import math
import os
import stat
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from avb_zoo.errors import IDXFormatError
from avb_zoo.util.fileio import atomic_write_bytes

_GZIP_MAGIC = b"\x1f\x8b"

# IDX type code -> big-endian numpy dtype (the format stores multi-byte values big-endian)
_CODE_TO_DTYPE: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_DTYPE_TO_CODE: dict[np.dtype, int] = {dt.newbyteorder("="): code for code, dt in _CODE_TO_DTYPE.items()}


MAX_IDX_BYTES = 1 << 31  # 2 GiB uncompressed: far above MNIST (47 MB); a larger header is refused unread
_TRAILING_SHOWN = 1 << 20  # trailing bytes counted exactly up to this many


def _stream(fh: BinaryIO, path: Path) -> BinaryIO:
    """``fh`` itself, or a gzip reader over it when the file starts with the gzip magic (decompressed lazily)."""
    if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
        raise IDXFormatError(f"{path}: not a regular file (a device, pipe or socket)")
    compressed = fh.read(2) == _GZIP_MAGIC
    fh.seek(0)
    return gzip.GzipFile(fileobj=fh, mode="rb") if compressed else fh


def _parse(stream: BinaryIO, path: Path, magic: int | None = None, what: str = "IDX file") -> np.ndarray:
    """Header first, then exactly the payload it implies: never more than the header's size is read."""
    head = stream.read(4)
    if len(head) < 4:
        raise IDXFormatError(f"{path}: too short for an IDX header ({len(head)} bytes)")
    if magic is not None and int.from_bytes(head, "big") != magic:
        raise IDXFormatError(
            f"{path}: IDX magic {head.hex()}, where {what} has magic {magic:08x}: not the file expected here"
        )
    if head[0] != 0 or head[1] != 0:
        raise IDXFormatError(f"{path}: bad IDX magic {head.hex()} (expected 0000 then type and ndim)")
    code, ndim = head[2], head[3]
    dtype = _CODE_TO_DTYPE.get(code)
    if dtype is None:
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise IDXFormatError(f"{path}: truncated IDX header (expected {header} bytes, got {4 + len(dims)})")
    shape = tuple(int.from_bytes(dims[4 * i : 4 + 4 * i], "big") for i in range(ndim))
    payload = math.prod(shape) * dtype.itemsize
    expected = header + payload
    if expected > MAX_IDX_BYTES:
        raise IDXFormatError(f"{path}: header declares shape {shape}, {expected:,} bytes; at most {MAX_IDX_BYTES:,}")
    body = stream.read(payload)
    extra = len(stream.read(_TRAILING_SHOWN))
    if len(body) < payload or extra:
        what = "truncated" if len(body) < payload else "trailing bytes"
        more = "more than " if extra == _TRAILING_SHOWN else ""
        has = header + len(body) + extra
        raise IDXFormatError(
            f"{path}: {what}: shape {shape} needs {expected} bytes, file has {more}{has} (uncompressed)"
        )
    array = np.frombuffer(body, dtype=dtype).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)  # writable, native byte order


def read_idx(path: str | Path, magic: int | None = None, what: str = "an IDX file") -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian array, checking magic, sizes and exact length.

    ``magic``: the four header bytes the caller expects (e.g. 0x00000803 for MNIST images), checked before
    anything else, so a labels file given as images is named as such (``what`` says what was expected).
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            stream = _stream(fh, path)
            try:
                return _parse(stream, path, magic, what)
            except IDXFormatError:
                if isinstance(stream, gzip.GzipFile):
                    stream.read(_TRAILING_SHOWN)  # a damaged gzip stream is the better explanation, when it is one
                raise
    except FileNotFoundError:
        raise IDXFormatError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from None
    except OSError as exc:
        raise IDXFormatError(f"{path}: cannot read: {exc.strerror or exc}") from None


def encode_idx(array: np.ndarray) -> bytes:
    """The IDX bytes (header + big-endian payload) of an array; no compression."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    code = _DTYPE_TO_CODE.get(native)
    if code is None:
        raise IDXFormatError(f"dtype {array.dtype} has no IDX type code")
    if array.ndim == 0 or array.ndim > 255:
        raise IDXFormatError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    if any(n >= 2**32 for n in array.shape):
        raise IDXFormatError(f"shape {array.shape} does not fit IDX's 32-bit sizes")
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=_CODE_TO_DTYPE[code]).tobytes()


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write an array (uint8 for MNIST) as IDX, gzipped when the path ends in .gz, atomically.

    The gzip header carries no timestamp or name, so the same array always gives the same bytes (and md5).
    """
    path = Path(path)
    data = encode_idx(array)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    atomic_write_bytes(path, data)
