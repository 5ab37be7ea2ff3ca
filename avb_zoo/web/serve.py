"""``avb-zoo serve``: a page folder over HTTP on 127.0.0.1 only (a static host, nothing more).

Loopback only, so the page is never offered to the network by accident; and only to requests whose Host names
that address, so a page elsewhere cannot reach it through a DNS name it rebinds to 127.0.0.1. Files are served
from inside the folder only (symbolic links are resolved first, and one that leads out is refused), folders
are never listed, and every answer carries ``nosniff`` and a content security policy that allows the page's
own scripts, its WebAssembly and nothing from elsewhere. Caching follows content: a graph or the wasm asked
for under its own hash (``?v=``, as page.json names them) is immutable, so a second visit downloads none of
the megabytes; the same file under another URL is revalidated by its ETag. The page's own small files (the
HTML, scripts, style and page.json, about 120 kB) are sent fresh each time (no-store): never stale, and in
Chromium the warm start of onnxruntime-web measured about twice as fast so as when the browser kept them.
``isolated`` adds COOP and COEP, which make the page cross-origin isolated, where onnxruntime-web may use
threads; without them the page runs single-threaded.
"""

from __future__ import annotations

import functools
import hashlib
import os
import signal
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from avb_zoo.errors import WebError

HOST = "127.0.0.1"
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm", ".json": "application/json"}
# what the page needs: its own scripts (and onnxruntime-web's module and workers), compiling its wasm, fetching
# its own files, its own styles and the empty icon; nothing inline, nothing from elsewhere, no framing
CSP = (
    "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self'; "
    "style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HASH_CHARS = 16  # the ?v= in a URL: the first hex digits of the file's sha256 (export-web writes the same)
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
FRESH = "no-store"
KEPT_TYPES = (".onnx", ".wasm")  # the large files a browser keeps


def content_hash(data: bytes) -> str:
    """The version a URL carries for ``data`` (``?v=``)."""
    return hashlib.sha256(data).hexdigest()[:HASH_CHARS]


class PageHandler(SimpleHTTPRequestHandler):
    """Static files from inside one folder, with the page's security headers and content-hash caching."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **TYPES}
    isolated = False
    root: Path = Path(".")
    _hashes: dict[tuple[str, int, int], str] = {}
    _lock = threading.Lock()

    def _host_allowed(self) -> bool:
        port = self.server.server_address[1]
        host = (self.headers.get("Host") or "").strip().lower()
        return host == f"{HOST}:{port}" or (port == 80 and host == HOST)

    def _file(self) -> Path | str | None:
        """The requested file, resolved (links followed) and inside the folder; a folder gives its index.html,
        or (asked for without its trailing slash) the URL to redirect to."""
        url_path = urllib.parse.urlsplit(self.path).path
        path = urllib.parse.unquote(url_path, errors="strict")
        if "\0" in path or "\\" in path:
            return None
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            return None
        try:
            target = self.root.joinpath(*parts).resolve(strict=True)
            if target.is_dir():
                if not url_path.endswith("/") and target.is_relative_to(self.root):
                    return url_path + "/"
                target = (target / "index.html").resolve(strict=True)
        except (OSError, RuntimeError, ValueError):
            return None
        if not target.is_relative_to(self.root) or not target.is_file():
            return None
        return target

    def _read(self, file: Path, head_only: bool) -> tuple[bytes, str]:
        """The file's bytes (none for HEAD once its hash is known) and its content hash, kept per version."""
        st = file.stat()
        key = (str(file), st.st_mtime_ns, st.st_size)
        with self._lock:
            digest = self._hashes.get(key)
        if head_only and digest is not None:
            return b"", digest
        data = file.read_bytes()
        if digest is None:
            digest = content_hash(data)
            with self._lock:
                self._hashes[key] = digest
        return data, digest

    def _answer(self, head_only: bool) -> None:
        if not self._host_allowed():
            self.send_error(HTTPStatus.FORBIDDEN, "this server answers only requests for its own address")
            return
        try:
            file = self._file()
        except UnicodeDecodeError:
            file = None
        if file is None:
            self.send_error(HTTPStatus.NOT_FOUND, "no such file in this page's folder")
            return
        if isinstance(file, str):
            self.send_response(HTTPStatus.MOVED_PERMANENTLY)
            self.send_header("Location", file)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        try:
            data, digest = self._read(file, head_only)
            size = file.stat().st_size if head_only else len(data)
        except OSError:
            self.send_error(HTTPStatus.NOT_FOUND, "no such file in this page's folder")
            return
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        etag = f'"{digest}"'
        if etag in [t.strip() for t in (self.headers.get("If-None-Match") or "").split(",")]:
            self.send_response(HTTPStatus.NOT_MODIFIED)
            self.send_header("ETag", etag)
            self._cache_header(file, query, digest)
            self.end_headers()
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", self.guess_type(str(file)))
        self.send_header("Content-Length", str(size))
        self.send_header("ETag", etag)
        self._cache_header(file, query, digest)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _cache_header(self, file: Path, query: dict[str, list[str]], digest: str) -> None:
        if file.suffix not in KEPT_TYPES:
            policy = FRESH
        else:
            policy = IMMUTABLE if query.get("v") == [digest] else REVALIDATE
        self.send_header("Cache-Control", policy)

    def do_GET(self) -> None:  # noqa: N802  (the base class's name)
        self._answer(head_only=False)

    def do_HEAD(self) -> None:  # noqa: N802
        self._answer(head_only=True)

    def list_directory(self, path: Any) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "folders are not listed")
        return None

    def end_headers(self) -> None:
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
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
    root = Path(os.path.realpath(folder))
    handler = type("Handler", (PageHandler,), {"isolated": isolated, "root": root, "_hashes": {}})
    try:
        return PageServer((HOST, port), functools.partial(handler, directory=str(root)))
    except OSError as err:
        raise WebError(f"cannot serve on {HOST}:{port}: {err.strerror or err}") from None


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM ends the command as Ctrl-C does (through the callers' ``finally``, so temporary folders go)."""

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
