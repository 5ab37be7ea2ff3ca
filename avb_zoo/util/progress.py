"""Progress a person can watch: a bar on a terminal, a plain line every N steps elsewhere (a log file, nohup,
CI), where a bar would print nothing useful for minutes or fill the log with carriage returns."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

PROGRESS_MODES = (True, False, "bar", "lines")


def format_seconds(seconds: float) -> str:
    """``42s``, ``3m05s``, ``2h14m``: short enough for a log line."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class StepLines:
    """Prints ``name step s/total (p%) losses | steps/s, eta`` lines to ``stream`` (stderr, like the bar)."""

    def __init__(self, name: str, total: int, first_step: int, elbo_key: str, stream: TextIO | None = None) -> None:
        self.name, self.total, self.first_step, self.elbo_key = name, total, first_step, elbo_key
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()

    def report(self, step: int, result: Any) -> None:
        elapsed = time.perf_counter() - self.started
        rate = (step - self.first_step) / elapsed if elapsed > 0 else 0.0
        eta = format_seconds((self.total - step) / rate) if rate > 0 else "?"
        percent = 100.0 * step / self.total if self.total else 100.0
        self.stream.write(
            f"{self.name} step {step}/{self.total} ({percent:.0f}%) primal {result.primal:.4g} "
            f"adversary {result.adversary:.4g} {self.elbo_key} {result.elbo:.4g} | "
            f"{rate:.1f} steps/s, eta {eta}\n"
        )
        self.stream.flush()
