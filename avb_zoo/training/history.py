"""The loss history of a run, kept in its folder as JSON lines (``history.jsonl``): one line per report.

Lines are appended as the run goes, so a killed run keeps what it reported; a resumed run first drops the
lines after the checkpoint it continues from (those steps are run again), so the file always describes one
run without repeats. ``avb-zoo plot RUN`` draws it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

from avb_zoo.errors import CheckpointError
from avb_zoo.util.bounded import read_regular
from avb_zoo.util.fileio import atomic_write_bytes

HISTORY_FILE = "history.jsonl"
MAX_HISTORY_BYTES = 256 << 20  # ~2 million lines; far above any run's reports
FIELDS = ("primal", "adversary", "elbo", "rec")


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None  # JSON has no NaN; the run stops on one anyway


class HistoryLog:
    """Appends one JSON line per report to ``folder/history.jsonl`` (rank 0 alone opens it)."""

    def __init__(self, folder: Path, resume_from: int | None) -> None:
        """A new run starts an empty file; a resumed one keeps the lines up to its checkpoint ``resume_from``."""
        path = folder / HISTORY_FILE
        kept = (
            [row for row in read_history(folder, missing_ok=True) if row["step"] <= resume_from] if resume_from else []
        )
        atomic_write_bytes(path, "".join(json.dumps(row, sort_keys=True) + "\n" for row in kept).encode())
        # rows record training wall time summed over sittings: a resumed run goes on from its checkpoint's row
        self.seconds_before = float(kept[-1].get("seconds") or 0.0) if kept else 0.0
        self._file: IO[str] | None = path.open("a", encoding="utf-8")

    def append(self, step: int, result: Any, seconds: float) -> None:
        """One line: the step, the losses of ``result`` (a StepResult) and the run's training seconds so far
        (``seconds`` since this sitting began plus the earlier sittings' seconds up to the checkpoint)."""
        if self._file is None:
            return
        row = {
            "step": step,
            "seconds": round(self.seconds_before + seconds, 3),
            **{k: _number(getattr(result, k)) for k in FIELDS},
        }
        self._file.write(json.dumps(row, sort_keys=True) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_history(folder: str | Path, *, missing_ok: bool = False) -> list[dict[str, Any]]:
    """The rows of ``folder/history.jsonl`` in order; a line cut short by a kill (the last one) is skipped."""
    path = Path(folder) / HISTORY_FILE
    if not path.is_file():
        if missing_ok:
            return []
        raise CheckpointError(f"{folder} holds no {HISTORY_FILE}: it is not a run folder, or its run kept no history")
    raw = read_regular(path, MAX_HISTORY_BYTES, CheckpointError, "loss history")
    rows = []
    lines = raw.decode("utf-8", errors="replace").splitlines()
    for number, line in enumerate(lines, 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                break  # the line a killed run was writing
            raise CheckpointError(f"{path}: line {number} is not JSON") from None
        if not isinstance(row, dict) or not isinstance(row.get("step"), int):
            raise CheckpointError(f"{path}: line {number} is not a history row (no integer step)")
        rows.append(row)
    return rows
