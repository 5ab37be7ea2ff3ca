"""``avb-zoo serve``: a page folder over HTTP on 127.0.0.1 only (a static host, nothing more).

Loopback only, so the page is never offered to the network by accident. ``isolated`` adds the two headers
(COOP and COEP) that make the page cross-origin isolated, where onnxruntime-web may use threads; without them
the page runs single-threaded.
"""

from __future__ import annotations

import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from avb_zoo.errors import WebError

HOST = "127.0.0.1"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}


class PageHandler(SimpleHTTPRequestHandler):
    """Static files with the right types for modules and wasm, no caching, and optional isolation headers."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    isolated = False

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        if self.isolated:
            self.send_header("Cross-Origin-Opener-Policy", "same-origin")
            self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  (the base class's name)
        pass  # quiet: the command prints its address once


class PageServer(ThreadingHTTPServer):
    """A browser that leaves mid-download (a closed tab, a cancelled fetch) is normal, not an error to print."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


def make_server(folder: Path, port: int = 8000, isolated: bool = False) -> PageServer:
    """A server for ``folder`` on 127.0.0.1:``port`` (0: any free port); WebError when the port is taken."""
    handler = type("Handler", (PageHandler,), {"isolated": isolated})
    try:
        return PageServer((HOST, port), functools.partial(handler, directory=str(folder)))
    except OSError as err:
        raise WebError(f"cannot serve on {HOST}:{port}: {err.strerror or err}") from None
