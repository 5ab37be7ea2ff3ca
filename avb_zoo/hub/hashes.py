"""File hashes: the sha256 the catalogue pins, the git blob id the Hub states for small files, and the check."""

from __future__ import annotations

import hashlib
from pathlib import Path

from avb_zoo.errors import ChecksumError
from avb_zoo.hub.cache import remove_cached


def sha256_file(path: Path) -> str:
    """The sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_blob_sha1(path: Path) -> str:
    """The git blob id of a file (what the Hub states for files stored outside LFS)."""
    digest = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_files(folder: Path, files: dict[str, str], where: str, cache: Path | None) -> None:
    """Check every file present in ``folder`` against ``files``; on a mismatch raise, deleting the file when
    ``folder`` is a snapshot of ``cache`` (and only inside the cache)."""
    for rel, want in sorted(files.items()):
        path = folder / rel
        if not path.exists():
            continue
        got = sha256_file(path)
        if got != want:
            if cache is not None:
                remove_cached(path, cache)
            action = "it was deleted from the cache; pull again" if cache is not None else "reinstall avb-zoo"
            raise ChecksumError(
                f"{where}: {rel} has sha256 {got[:16]}..., the catalogue expects {want[:16]}... "
                f"(a corrupt or tampered file; {action})"
            )
