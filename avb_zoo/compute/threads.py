"""Torch's intra-op threads: apply a :mod:`avb_zoo.util.threads` choice and keep it right during a long loop."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from avb_zoo.util.threads import (
    RECHECK_SECONDS,
    OtherLoad,
    ThreadChoice,
    check_threads,
    choose_threads,
    idle_cores,
    physical_cores,
)

__all__ = [
    "ThreadChoice",
    "ThreadGovernor",
    "apply_threads",
    "check_threads",
    "choose_threads",
    "governed",
    "mean_product_flops",
    "tick",
]


def apply_threads(choice: ThreadChoice) -> ThreadChoice:
    """Set torch's intra-op thread count to the choice."""
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


class ThreadGovernor:
    """Keeps an automatic choice right while a long loop runs: every ``RECHECK_SECONDS`` it measures the other
    programs' load since the last look and moves the thread count to the cores they leave idle.

    A fixed choice (``--threads`` or an environment variable) is never changed. ``counts`` lists every count
    used, in order.
    """

    def __init__(self, choice: ThreadChoice, processes: int = 1, recheck_seconds: float = RECHECK_SECONDS) -> None:
        self.before = torch.get_num_threads()  # the caller's count, given back by restore()
        self.choice = apply_threads(choice)
        # several processes of one run (torchrun) keep the count they started with: each sees the others as load
        self.active = choice.follows_load and processes <= 1
        self.recheck = recheck_seconds
        self.counts = [choice.threads]
        self.load = OtherLoad() if self.active else None
        self.cores = physical_cores() if self.active else 1
        self.next_check = time.monotonic() + recheck_seconds

    def tick(self) -> None:
        """Call once per step: cheap (a clock read) except every ``recheck_seconds``."""
        if not self.active or time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + self.recheck
        assert self.load is not None
        busy = self.load.busy_cores()
        if busy is None:
            return
        wanted = idle_cores(busy, self.cores)
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
            self.counts.append(wanted)

    def record(self) -> dict[str, object]:
        """What training.json and metrics.json keep: the count at the start, where it came from, and the
        counts it moved to later (automatic choice under a changing load)."""
        record: dict[str, object] = {"threads": self.counts[0], "threads_source": self.choice.describe()}
        if len(self.counts) > 1:
            record["threads_later"] = self.counts[1:]
        return record

    def restore(self) -> None:
        """Give the caller back the thread count it had before this governor."""
        if torch.get_num_threads() != self.before:
            torch.set_num_threads(self.before)


_GOVERNING: list[ThreadGovernor] = []  # the governors of the ``governed`` blocks now open, innermost last


@contextmanager
def governed(choice: ThreadChoice, processes: int = 1) -> Iterator[ThreadGovernor]:
    """A ThreadGovernor for the block: torch runs on its count inside, :func:`tick` reaches it from any loop
    the block calls, and the thread count the caller had is back afterwards."""
    governor = ThreadGovernor(choice, processes)
    _GOVERNING.append(governor)
    try:
        yield governor
    finally:
        _GOVERNING.remove(governor)
        governor.restore()


def tick() -> None:
    """Tick the governor of the innermost :func:`governed` block (none open: nothing). Cheap: call it per step."""
    if _GOVERNING:
        _GOVERNING[-1].tick()


def mean_product_flops(module: torch.nn.Module, batch: int) -> float:
    """Mean FLOPs of one matrix product of ``module``'s linear and convolution layers at ``batch`` rows (a
    convolution counted once per output position would be larger; this lower figure only decides 'too small')."""
    sizes = [
        2.0 * batch * m.weight.numel()
        for m in module.modules()
        if isinstance(m, torch.nn.Linear | torch.nn.Conv1d | torch.nn.Conv2d | torch.nn.ConvTranspose2d)
    ]
    return sum(sizes) / len(sizes) if sizes else 0.0
