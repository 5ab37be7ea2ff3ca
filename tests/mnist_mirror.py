"""A local HTTP mirror of the committed MNIST subset, with the md5 sums patched to the subset's: the download
commands run end to end without the internet (used by test_data_cli.py and test_readme_examples.py)."""

from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from avb_zoo.data import mnist

SUBSET = Path(__file__).resolve().parent / "data" / "mnist-subset"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The URL of a local HTTP server of ``folder`` while the block runs."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def subset_as_mnist(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the committed subset pass the md5 check of the MNIST downloader (for this test only)."""
    for name, digest in mnist.read_md5sums(SUBSET / "MD5SUMS").items():
        monkeypatch.setitem(mnist.MNIST_MD5, name, digest)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
