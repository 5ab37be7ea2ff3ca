"""The standard HF cache's layout (``models--ORG--NAME/snapshots/COMMIT``) and deleting from it safely."""

from __future__ import annotations

import os
from pathlib import Path


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


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def remove_cached(path: Path, cache: Path) -> None:
    """Delete a cache entry (the snapshot link and the blob it points to), only where each lies inside ``cache``.

    A link whose folder or target resolves outside the cache is left alone: deleting through it would delete a
    file the cache does not own.
    """
    root = Path(os.path.realpath(cache))
    if not _inside(Path(os.path.realpath(path.parent)), root):
        return
    target = Path(os.path.realpath(path))
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    if target != path and _inside(target, root) and target.is_file() and not target.is_symlink():
        target.unlink(missing_ok=True)
