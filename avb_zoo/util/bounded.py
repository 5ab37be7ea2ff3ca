"""Reads with a size limit and JSON with a nesting limit, so a hostile file fails in one line instead of
exhausting memory or the stack.

A regular file's size is known before reading it, so the limit is checked first; a device or a pipe
(``/dev/zero``, a FIFO) has no size and is refused. Torch-free.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from avb_zoo.errors import AVBZooError


def read_regular(path: Path, limit: int, error: type[AVBZooError], what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` when it holds at most ``limit`` of them; else ``error``.

    A missing file raises FileNotFoundError, for the caller to word.
    """
    with open(path, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path} is not a regular file (a device, pipe or socket); a {what} must be one")
        if info.st_size > limit:
            raise error(f"{path} is {info.st_size:,} bytes; a {what} is at most {limit:,}")
        # the size the file has now, plus one byte to notice growth: read(limit + 1) would reserve the whole limit
        data = fh.read(info.st_size + 1)
    if len(data) > limit:
        raise error(f"{path} grew past {limit:,} bytes while being read; a {what} is at most {limit:,}")
    return data


def loads_json(text: str | bytes, where: object, error: type[AVBZooError]) -> Any:
    """``json.loads``, with syntax errors and too deep nesting reported as ``error`` naming ``where``."""
    try:
        return json.loads(text)
    except RecursionError:
        raise error(f"{where} is nested too deeply to be a valid file of its kind; refused") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise error(f"{where} is not valid JSON: {err}") from None
