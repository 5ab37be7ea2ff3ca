"""Rebuild the binarised MNIST test images of an evaluation from its metrics.json, with hashlib and numpy alone.

    python tests/rebuild_binarized.py METRICS_JSON T10K_IMAGES_GZ OUT_NPY

Reads protocol.seed, protocol.example_indices and protocol.data.binarization_key, derives each image's
generator from the key as the record says, and writes the bits [n, 784] (uint8) to OUT_NPY. It imports nothing
of avb_zoo (and checks that), so it tests that the record alone says how the bits were made.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys

import numpy as np


def read_idx_images(path: str) -> np.ndarray:
    """uint8 [N, rows * cols] from a gzipped IDX3 file (magic 2051, big-endian sizes)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    assert magic == 2051, f"{path} is not an IDX3 image file"
    return np.frombuffer(data[16:], dtype=np.uint8).reshape(int(count), int(rows) * int(cols))


def image_seed(key: dict, seed: int, index: int) -> int:
    """The 63-bit seed of one image: the record's key parts, joined, hashed and read as it says."""
    assert key["hash"] == "blake2b" and key["digest_to_int"].startswith("little-endian, then shifted right by 1")
    parts = [p.replace("{seed}", str(seed)).replace("{example_index}", str(index)) for p in key["key_parts"]]
    text = key["key_separator"].join(parts).encode(key["key_encoding"])
    digest = hashlib.blake2b(text, digest_size=key["digest_size"]).digest()
    return int.from_bytes(digest, "little") >> 1


def uniforms(key: dict, seed63: int, n: int) -> np.ndarray:
    """n float32 uniforms from MT19937 seeded by init_genrand(seed mod 2**32), keeping uniform_bits of each output."""
    assert key["generator"] == "mt19937"
    legacy = np.random.RandomState(seed63 % 2**32)  # init_genrand, the reference MT19937 seeding
    bit_generator = np.random.MT19937()
    bit_generator.state = {"bit_generator": "MT19937", "state": {"key": legacy.get_state()[1], "pos": 624}}
    bits = key["uniform_bits"]
    raw = bit_generator.random_raw(n).astype(np.uint64) & np.uint64(2**bits - 1)
    return raw.astype(np.float32) * np.float32(2.0**-bits)


def rebuild(metrics: dict, images: np.ndarray) -> np.ndarray:
    protocol = metrics["protocol"]
    key = protocol["data"]["binarization_key"]
    assert key["comparison_operator"] == "<="
    out = []
    for index in protocol["example_indices"]:
        pixels = images[index]
        u = uniforms(key, image_seed(key, protocol["seed"], index), pixels.size)
        out.append((u <= pixels.astype(np.float32) / np.float32(255)).astype(np.uint8))
    return np.stack(out)


if __name__ == "__main__":
    metrics_path, images_path, out_path = sys.argv[1:4]
    with open(metrics_path) as f:
        bits = rebuild(json.load(f), read_idx_images(images_path))
    assert not any(name.split(".")[0] == "avb_zoo" for name in sys.modules), "avb_zoo was imported"
    np.save(out_path, bits)
