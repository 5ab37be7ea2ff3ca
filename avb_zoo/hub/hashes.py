"""File hashes and the HF cache: the sha256 the catalogue pins, the git blob id the Hub states for small files,
the check, the cache's layout (``models--ORG--NAME/snapshots/COMMIT``) and deleting from it safely."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from avb_zoo.errors import ChecksumError


def repo_cache_dir(cache: Path, repo_id: str) -> Path:
    """A repo's folder in the cache, as huggingface_hub lays it out."""
    return cache / ("models--" + repo_id.replace("/", "--"))


def snapshot_dir(cache: Path, repo_id: str, commit: str) -> Path:
    """The folder holding a repo's files at one commit."""
    return repo_cache_dir(cache, repo_id) / "snapshots" / commit


def snapshot_root(path: Path, rel: str) -> Path:
    """The snapshot folder of a downloaded file ``path`` whose path in the repo is ``rel``."""
    root = path
    for _ in rel.split("/"):
        root = root.parent
    return root


def remove_cached(path: Path, cache: Path) -> None:
    """Delete a cache entry (the snapshot link and the blob it points to), only where each lies inside ``cache``.

    A link whose folder or target resolves outside the cache is left alone: deleting through it would delete a
    file the cache does not own.
    """
    root = Path(os.path.realpath(cache))
    if not Path(os.path.realpath(path.parent)).is_relative_to(root):
        return
    target = Path(os.path.realpath(path))
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    if target != path and target.is_relative_to(root) and target.is_file() and not target.is_symlink():
        target.unlink(missing_ok=True)


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
