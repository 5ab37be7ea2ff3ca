"""The runtime's portable random stream: the same float32 draws for a seed in Python and in the browser page.

numpy's generators cannot be reproduced cheaply in JavaScript, so the runtime draws its noise from a stream
defined here in a few lines of integer and IEEE-754 double arithmetic, which ``avb_zoo/web/static/stream.js``
repeats operation for operation:

1. 64-bit words: splitmix64. ``key = mix64(seed mod 2**64) ^ stream``; word ``i`` (i = 0, 1, ...) is
   ``mix64(key + (i + 1) * 0x9E3779B97F4A7C15 mod 2**64)`` (a counter, so no state beyond the index).
2. Uniforms in [-1, 1): ``(word >> 11) * 2**-52 - 1`` (exact in a double).
3. Normals: Marsaglia's polar method on words (2j, 2j+1): ``s = v1*v1 + v2*v2``; a pair with ``s >= 1`` or
   ``s == 0`` is skipped; else ``f = sqrt(-2 * log(s) / s)`` gives ``v1 * f`` then ``v2 * f``, each rounded
   to float32. ``log`` is computed here from +, -, *, / and frexp (a fixed series, below), never the
   platform's libm, so every step is a correctly rounded IEEE operation and the draws agree bit for bit.

A stream is read in order and does not depend on how it is chunked: ``NormalStream(seed, s).take(a)`` then
``.take(b)`` equals ``.take(a + b)``.
"""

from __future__ import annotations

import math

import numpy as np

GAMMA = 0x9E3779B97F4A7C15
MASK64 = (1 << 64) - 1
LN2 = 0.6931471805599453  # the double nearest ln 2
SQRT_HALF = 0.7071067811865476
SERIES_TERMS = 12  # 2 * atanh(t) to 1e-18 for |t| <= 0.172

# stream numbers: one per kind of draw, so the prior and the encoder noise of one seed are unrelated
PRIOR = 1  # z ~ N(0, I) of Sampler.prior / sample
ENCODER_NOISE = 2  # eps of Encoder.encode (and the page's posterior samples)
BINARIZE = 3  # Sampler.binarize's uniforms
POSTERIOR_NOISE = 4  # eps of PosteriorSampler.draw


def _mix64_int(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser on uint64 arrays (numpy's uint64 arithmetic wraps modulo 2**64)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, stream: int) -> int:
    """The splitmix64 key of (seed, stream); any Python int seed (negative ones wrap modulo 2**64)."""
    return _mix64_int(int(seed) & MASK64) ^ (int(stream) & MASK64)


def words(key: int, start: int, count: int) -> np.ndarray:
    """Words ``start .. start + count - 1`` of the stream with ``key``, uint64 [count]."""
    counters = np.arange(start + 1, start + count + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        return _mix64(np.uint64(key) + counters * np.uint64(GAMMA))


def portable_log(s: np.ndarray) -> np.ndarray:
    """Natural log of positive float64 values from frexp and a fixed atanh series (no libm: bit-reproducible)."""
    m, e = np.frexp(s)  # s = m * 2**e, m in [0.5, 1)
    low = m < SQRT_HALF
    m = np.where(low, m * 2.0, m)
    e = np.where(low, e - 1, e).astype(np.float64)
    t = (m - 1.0) / (m + 1.0)
    t2 = t * t
    p = np.full_like(t, 1.0 / (2 * SERIES_TERMS - 1))
    for k in range(SERIES_TERMS - 2, -1, -1):
        p = p * t2 + 1.0 / (2 * k + 1)
    return e * LN2 + 2.0 * t * p


def uniform_words(w: np.ndarray) -> np.ndarray:
    """Uniform doubles in [0, 1) from words: ``(word >> 11) * 2**-53`` (exact)."""
    return (w >> np.uint64(11)).astype(np.float64) * 2.0**-53


class NormalStream:
    """float32 N(0, 1) draws of (seed, stream), read in order (see the module notes for the definition)."""

    def __init__(self, seed: int, stream: int) -> None:
        self.key = stream_key(seed, stream)
        self._next_word = 0
        self._spare = np.empty(0, dtype=np.float32)

    def take(self, count: int) -> np.ndarray:
        """The next ``count`` draws, float32 [count]."""
        parts, have = [self._spare], len(self._spare)
        while have < count:
            pairs = max(64, int((count - have) * 0.64) + 16)  # 2 draws per accepted pair, pi/4 accepted
            w = words(self.key, self._next_word, 2 * pairs)
            self._next_word += 2 * pairs
            v = (w >> np.uint64(11)).astype(np.float64) * 2.0**-52 - 1.0
            v1, v2 = v[0::2], v[1::2]
            s = v1 * v1 + v2 * v2
            ok = (s < 1.0) & (s > 0.0)
            v1, v2, s = v1[ok], v2[ok], s[ok]
            f = np.sqrt(-2.0 * portable_log(s) / s)
            drawn = np.stack([v1 * f, v2 * f], axis=1).reshape(-1).astype(np.float32)
            parts.append(drawn)
            have += len(drawn)
        out = np.concatenate(parts)
        self._spare = out[count:]
        return out[:count]


class UniformStream:
    """Uniform doubles in [0, 1) of (seed, stream), one per word, read in order."""

    def __init__(self, seed: int, stream: int) -> None:
        self.key = stream_key(seed, stream)
        self._next_word = 0

    def take(self, count: int) -> np.ndarray:
        out = uniform_words(words(self.key, self._next_word, count))
        self._next_word += count
        return out


def normal(seed: int, stream: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 draws of shape ``shape``, filled row-major from the start of (seed, stream)."""
    return NormalStream(seed, stream).take(math.prod(shape)).reshape(shape)


def fresh_seed() -> int:
    """A seed from the operating system's entropy, for calls that ask for fresh noise (seed=None)."""
    return int.from_bytes(np.random.SeedSequence().generate_state(2, np.uint32).tobytes(), "little")
