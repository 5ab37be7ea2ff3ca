"""Checks for the names that reach the Hub or the file system: repo ids, revisions, file paths, sha256s.

They run before any request or write, so a hostile catalogue entry or argument (``..``, an absolute path,
odd characters) is refused with a message instead of being joined into a URL or a cache path. Torch-free.
"""

from __future__ import annotations

import re

from avb_zoo.errors import InvalidRepoId, shown

# The Hub's own rules (huggingface_hub.utils.validate_repo_id): word characters, '-', '.', at most 96 each part.
_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}$")
_PATH_PART = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,254}$")
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def check_repo_id(repo_id: object) -> str:
    """``ORG/NAME`` made of letters, digits, ``_ - .``; no ``..``/``--`` runs, no ``.git`` suffix."""
    if not isinstance(repo_id, str):
        raise InvalidRepoId(f"a repo id must be a string like ORG/NAME, got {type(repo_id).__name__}")
    parts = repo_id.split("/")
    if len(parts) != 2:
        raise InvalidRepoId(f"repo id {shown(repo_id)} must have the form ORG/NAME (exactly one '/')")
    if ".." in repo_id or "--" in repo_id or repo_id.endswith(".git"):
        raise InvalidRepoId(f"repo id {shown(repo_id)} may not contain '..' or '--' or end with '.git'")
    for part in parts:
        if not _PART.match(part) or part.endswith("."):
            raise InvalidRepoId(
                f"repo id {shown(repo_id)}: {shown(part)} must be 1-96 letters, digits, '_', '-' or '.', starting "
                "with a letter or digit"
            )
    return repo_id


def check_revision(revision: object) -> str:
    """A branch, tag or commit sha: no ``..``, no leading ``/`` or ``-``, no spaces or control characters."""
    if not isinstance(revision, str):
        raise InvalidRepoId(f"a revision must be a string (branch, tag or commit sha), got {type(revision).__name__}")
    if ".." in revision or "//" in revision or revision.endswith(("/", ".lock")) or not _REVISION.match(revision):
        raise InvalidRepoId(
            f"revision {shown(revision)} is not a valid branch, tag or commit sha (letters, digits, '_ - . /'; no '..')"
        )
    return revision


def check_repo_path(path: object) -> str:
    """A relative POSIX path inside a repo (``onnx/encoder.onnx``): no ``..``, no absolute or hidden parts."""
    if not isinstance(path, str) or not path:
        raise InvalidRepoId(f"a file path in a repo must be a non-empty string, got {shown(path)}")
    parts = path.split("/")
    if len(parts) > 8 or not all(_PATH_PART.match(p) and p not in (".", "..") for p in parts):
        raise InvalidRepoId(
            f"file path {shown(path)} must be relative, with parts of letters, digits, '_ + - .' "
            "(no '..', no leading '/')"
        )
    return path


def check_sha256(value: object, where: str) -> str:
    if not isinstance(value, str) or not SHA256.match(value):
        raise InvalidRepoId(f"{where} must be a sha256 (64 lowercase hex digits), got {shown(value)}")
    return value
