"""SIGTERM handled like Ctrl-C: ``kill``, a batch scheduler or a container stop then unwinds the run the same
way, so a checkpoint being written is cleaned up (no stray temp file) and the run says how to resume."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def sigterm_as_interrupt(enabled: bool = True) -> Iterator[None]:
    """While the block runs, SIGTERM raises KeyboardInterrupt (main thread only; the old handler comes back).

    A handler someone else installed (not the default) is left in place: its owner decides. Under torchrun
    pass ``enabled=False``: the elastic agent stops a group with SIGTERM, and a worker blocked in a collective
    would only see the exception when the collective returns, long after the default action would have ended it.
    """
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGTERM)
    if previous not in (signal.SIG_DFL, None):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
