"""Time limits for tests that run other processes, scaled to how fast this machine is at the moment.

A limit is a guard against a hung process, not a measure of speed: a test must not fail because the machine is
busy. ``budget(seconds)`` is the limit on a quiet machine times a factor measured here (once per test session):
the time a fixed piece of work takes now against the time it takes on a quiet machine, and the load average per
core, whichever is larger (never below 1).
"""

from __future__ import annotations

import functools
import os
import time

QUIET_SECONDS = 0.25  # the work below on one quiet core: about half its time at load 3.5-4 on 2 cores, set low


def _work() -> float:
    """Seconds for a fixed mix of interpreter and torch work on one thread."""
    import torch

    started = time.perf_counter()
    a = torch.ones(256, 256)
    for _ in range(60):
        a = torch.tanh(a @ a / 256)
    total = 0
    for i in range(400_000):
        total += i % 7
    return time.perf_counter() - started


@functools.cache
def slowdown() -> float:
    """How many times slower than quiet this machine is now (at least 1)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        measured = min(_work() for _ in range(3))
    finally:
        torch.set_num_threads(threads)
    load = os.getloadavg()[0] / (os.cpu_count() or 1) if hasattr(os, "getloadavg") else 0.0
    return max(1.0, measured / QUIET_SECONDS, load)


def budget(seconds: float) -> float:
    """``seconds`` (a limit on a quiet machine) scaled by :func:`slowdown`."""
    return seconds * slowdown()
