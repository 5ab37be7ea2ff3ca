"""Keyed random numbers computed on the device: Philox4x32-10 written in plain integer tensor ops.

The fast engines draw every random number of a step inside the step itself (CUDA graphs cannot call back
to the host). A counter-based generator makes that possible and keeps the project's keyed-randomness
promise: the numbers of a step are a pure function of (seed, stream, step, sub-step, position), with the
step a device tensor, so they do not depend on the device, the engine, or where a run was resumed. The same
ops run on CPU tensors, in torch.compile graphs and in captured CUDA graphs, which is what lets the fast
engines be tested against the eager one on a CPU.

Philox4x32 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3") maps a 128-bit counter and
a 64-bit key through 10 rounds of multiply-xor. Unsigned 32-bit words live in int64 tensors; the 32x32-bit
products are split into 16-bit halves so that no intermediate leaves the int64 range.
"""

from __future__ import annotations

import math

import torch

from avb_zoo.compute.rng import derive_seed
from avb_zoo.errors import shown

MASK32 = 0xFFFFFFFF
PHILOX_M0, PHILOX_M1 = 0xD2511F53, 0xCD9E8D57
PHILOX_W0, PHILOX_W1 = 0x9E3779B9, 0xBB67AE85
ROUNDS = 10
STREAMS = {"eps": 1, "contrast": 2, "binarize": 3}  # part of the stream's definition: never renumber
MAX_SUB = 1 << 16


def _mulhilo(a: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high, low) 32-bit words of a * b for 32-bit a (int64 tensor) and a 32-bit constant b."""
    a_hi, a_lo = a >> 16, a & 0xFFFF
    hi_part, lo_part = a_hi * b, a_lo * b  # each < 2**48
    low = (((hi_part & 0xFFFF) << 16) + lo_part) & MASK32
    high = (hi_part + (lo_part >> 16)) >> 16
    return high & MASK32, low


def philox4x32(counter: list[torch.Tensor], key: tuple[int, int]) -> list[torch.Tensor]:
    """Philox4x32-10 of four counter words (int64 tensors holding values below 2**32) under a 64-bit key."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for r in range(ROUNDS):
        if r:
            k0, k1 = (k0 + PHILOX_W0) & MASK32, (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(c0, PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return [c0, c1, c2, c3]


def run_key(seed: int) -> tuple[int, int]:
    """The 64-bit Philox key of a run, a hash of its seed (the same hash as the host generators' keys)."""
    k = derive_seed(seed, "device-noise")
    return k & MASK32, (k >> 32) & MASK32


def random_words(seed: int, stream: str, step: torch.Tensor, sub: int, n: int) -> torch.Tensor:
    """4 * ceil(n / 4) >= n uniformly random 32-bit words (int64) of (seed, stream, step, sub).

    ``step`` is a 0-dim int64 tensor on the device the words are made on (a captured graph advances it).
    """
    if stream not in STREAMS:
        raise ValueError(f"unknown noise stream {shown(stream)}")
    if not 0 <= sub < MAX_SUB:
        raise ValueError(f"sub-step {sub} out of range")
    blocks = torch.arange(math.ceil(n / 4), dtype=torch.int64, device=step.device)
    step = step.to(torch.int64)
    c1 = (step & MASK32).expand_as(blocks)
    c2 = ((step >> 32) & MASK32).expand_as(blocks)
    c3 = torch.full_like(blocks, STREAMS[stream] | (sub << 8))
    words = philox4x32([blocks, c1, c2, c3], run_key(seed))
    return torch.stack(words, dim=1).reshape(-1)


def uniform(seed: int, stream: str, step: torch.Tensor, sub: int, shape: tuple[int, ...], dtype: torch.dtype):
    """U(0, 1) in the open interval: the top 24 bits of each word, centred in their cell."""
    n = math.prod(shape)
    words = random_words(seed, stream, step, sub, n)[:n]
    return (((words >> 8).to(dtype) + 0.5) * 2.0**-24).reshape(shape)


def normal(seed: int, stream: str, step: torch.Tensor, sub: int, shape: tuple[int, ...], dtype: torch.dtype):
    """N(0, 1) by Box-Muller on pairs of words (each pair gives two normals)."""
    n = math.prod(shape)
    pairs = math.ceil(n / 2)
    words = random_words(seed, stream, step, sub, 2 * pairs)[: 2 * pairs].reshape(pairs, 2)
    u = ((words >> 8).to(torch.float64 if dtype == torch.float64 else torch.float32) + 0.5) * 2.0**-24
    radius = torch.sqrt(-2.0 * torch.log(u[:, 0]))
    angle = (2.0 * math.pi) * u[:, 1]
    z = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1).reshape(-1)[:n]
    return z.to(dtype).reshape(shape)
