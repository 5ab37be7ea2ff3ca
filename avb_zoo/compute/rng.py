"""Keyed randomness: every draw comes from a generator derived from a key such as (seed, step, stream).

A training step's binarisation, encoder noise and prior samples depend only on (seed, step), and an
evaluation's draws only on (seed, example index). Results therefore do not depend on where a run was
resumed or how many processes share the work, and a checkpoint needs no generator state beyond the step.
"""

from __future__ import annotations

import hashlib

import torch


def derive_seed(*key: int | str) -> int:
    """A 63-bit seed that is a hash of the key's parts (stable across processes and Python versions)."""
    text = "\x1f".join(f"{type(k).__name__}:{k}" for k in key)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") >> 1


def keyed_generator(*key: int | str) -> torch.Generator:
    """A CPU generator seeded from ``key`` (draw on the CPU, then move: the numbers do not depend on the device)."""
    gen = torch.Generator()
    gen.manual_seed(derive_seed(*key))
    return gen
