"""The project's one import of onnxruntime, made with its telemetry off unless the user decided otherwise.

onnxruntime writes a device id and an event database under the user's cache and temp folders on every run,
and longer runs try to reach an outside telemetry host. ``ORT_DISABLE_TELEMETRY=1``, set before onnxruntime
is first imported, stops all of it (``disable_telemetry_events()`` does not). A user who sets the variable
themselves keeps their choice. Every module of the project imports onnxruntime from here.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

import onnxruntime  # noqa: E402  (the variable above must be set first)

ort = onnxruntime


def quantization() -> object:
    """onnxruntime's quantisation tools (``onnxruntime.quantization``), imported on demand from here as well."""
    import onnxruntime.quantization as tools

    return tools


__all__ = ["onnxruntime", "ort", "quantization"]
