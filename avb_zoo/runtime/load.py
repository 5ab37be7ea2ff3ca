"""Other programs' load, measured from the runtime's import on: a session's automatic thread count reads it
(:mod:`avb_zoo.runtime.session`), and the imports that follow it (numpy's, onnxruntime's) fill most of the
measuring window, so the choice costs no wait of its own."""

from __future__ import annotations

from avb_zoo.util.threads import OtherLoad

LOAD = OtherLoad()
