"""IDX files (the MNIST container format), read strictly and written atomically.

Strict because a truncated download or a wrong file must fail loudly at load time, not as a silent shape
error deep in training. Gzip is detected from the magic bytes, not the suffix, so renamed files still work.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from avb_zoo.errors import IDXFormatError
from avb_zoo.fileio import atomic_write_bytes

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


def _read_bytes(path: Path) -> bytes:
    """The file's contents, decompressed when it starts with the gzip magic."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise IDXFormatError(f"{path}: file not found") from None
    if not raw.startswith(_GZIP_MAGIC):
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, OSError, zlib.error) as exc:
        raise IDXFormatError(f"{path}: corrupt or truncated gzip stream ({exc})") from None


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (gzip or raw) into a native-endian array, checking magic, sizes and exact length."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise IDXFormatError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError(f"{path}: bad IDX magic {data[:4].hex()} (expected 0000 then type and ndim)")
    code, ndim = data[2], data[3]
    dtype = _CODE_TO_DTYPE.get(code)
    if dtype is None:
        raise IDXFormatError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise IDXFormatError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{path}: truncated IDX header (expected {header} bytes, got {len(data)})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "trailing bytes"
        raise IDXFormatError(
            f"{path}: {what}: shape {shape} needs {expected} bytes, file has {len(data)} (uncompressed)"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)  # writable, native byte order


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
