"""PNG files of every kind, written byte by byte (Pillow writes neither 16-bit colour nor interlaced PNGs).

Used by the page's tests: each file is read by ``load_images`` and by the page's own decoder (png.js), which
must agree exactly.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
SIGNATURE = b"\x89PNG\r\n\x1a\n"


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def header(width: int, height: int, depth: int = 8, color_type: int = 0, interlace: int = 0) -> bytes:
    """The signature and IHDR alone: what a reader sees before any pixel."""
    return SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, interlace))


def _rows(samples: np.ndarray, depth: int) -> bytes:
    out = bytearray()
    for row in samples.reshape(samples.shape[0], -1):
        if depth == 16:
            raw = row.astype(">u2").tobytes()
        elif depth == 8:
            raw = row.astype(np.uint8).tobytes()
        else:
            bits = "".join(format(int(v), f"0{depth}b") for v in row)
            bits += "0" * (-len(bits) % 8)
            raw = bytes(int(bits[i : i + 8], 2) for i in range(0, len(bits), 8))
        out += b"\0" + raw
    return bytes(out)


def png(
    samples: np.ndarray,
    depth: int,
    color_type: int,
    palette: np.ndarray | None = None,
    trns: bytes | None = None,
    interlace: bool = False,
) -> bytes:
    """A PNG of ``samples`` ([H, W] or [H, W, channels], raw values at ``depth`` bits; indices for palettes)."""
    s = np.asarray(samples)
    s = s[..., None] if s.ndim == 2 else s
    height, width = s.shape[:2]
    if interlace:
        raw = b"".join(_rows(s[y::dy, x::dx], depth) for x, y, dx, dy in ADAM7 if s[y::dy, x::dx].size)
    else:
        raw = _rows(s, depth)
    out = header(width, height, depth, color_type, int(interlace))
    if palette is not None:
        out += chunk(b"PLTE", bytes(np.asarray(palette, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def every_kind(height: int, width: int, seed: int = 0) -> dict[str, bytes]:
    """One PNG per colour type, bit depth, interlacing and transparency chunk, of random pixels."""
    rng = np.random.default_rng(seed)
    files = {}
    for color_type, depths in {0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16]}.items():
        for depth in depths:
            for interlace in (False, True):
                for with_trns in (False, True) if color_type in (0, 2, 3) else (False,):
                    palette = trns = None
                    if color_type == 3:
                        entries = int(rng.integers(1, 2**depth + 1))
                        palette = rng.integers(0, 256, (entries, 3))
                        s = rng.integers(0, 2**depth, (height, width))
                        if with_trns:
                            trns = bytes(rng.integers(0, 256, int(rng.integers(1, entries + 1))).astype(np.uint8))
                    else:
                        s = rng.integers(0, 2**depth, (height, width, CHANNELS[color_type]))
                        if color_type in (4, 6):  # fully transparent and fully opaque pixels among the rest
                            alpha = s[..., -1]
                            alpha[rng.random(alpha.shape) < 0.25] = 0
                            alpha[rng.random(alpha.shape) < 0.25] = 2**depth - 1
                        if with_trns:
                            trns = b"".join(int(v).to_bytes(2, "big") for v in s[0, 0])
                    name = (
                        f"type{color_type}-{depth}bit{'-interlaced' if interlace else ''}{'-trns' if with_trns else ''}"
                    )
                    files[f"{name}.png"] = png(s, depth, color_type, palette, trns, interlace)
    return files


def bomb(width: int, height: int) -> bytes:
    """A valid greyscale PNG of width x height zero pixels: a few hundred kB that inflate to width*height bytes."""
    compressor = zlib.compressobj(9)
    row = b"\0" * (width + 1)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return header(width, height) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
