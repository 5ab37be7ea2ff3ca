"""Catalogue models: their files at the catalogue's pinned revision, each checked against the catalogue's sha256.

Online, the files are downloaded (or found) in the standard HF cache; a mismatch deletes the file from the cache
and fails. When the Hub cannot be reached, or offline mode is on and the cache has no copy, the copy shipped
inside the package serves, and the result says so. Offline mode never opens a connection.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avb_zoo.catalogue.names import check_repo_id
from avb_zoo.catalogue.registry import usable_instead
from avb_zoo.errors import CheckpointError, HubNotFound, HubRepoNotFound, HubUnreachable, shown
from avb_zoo.hub.client import (
    Pulled,
    Unreachable,
    call_error,
    hub_cache_dir,
    hub_endpoint,
    hub_settings,
    is_connection_error,
    offline_mode,
)
from avb_zoo.hub.hashes import repo_cache_dir, sha256_file, snapshot_dir, snapshot_root, verify_files
from avb_zoo.modelfile.config_file import CONFIG_FILE
from avb_zoo.modelfile.files import PUSHED, REQUIRED, TEST_DATA_FILES

if TYPE_CHECKING:
    from avb_zoo.catalogue.registry import ModelSpec

# When the registry has no hashes for a model (some plugins), these are what a model folder holds.
UNHASHED_PATTERNS = list(PUSHED)
_COMMIT = re.compile(r"[0-9a-f]{40}")


def _probe(repo_id: str, probe_file: str, revision: str, endpoint: str) -> None:
    """One HEAD request without retries, so that an unreachable Hub fails fast (the download would retry ~25 s)."""
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_url

    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or constants.HF_HUB_ETAG_TIMEOUT)
    url = hf_hub_url(repo_id, probe_file, revision=revision, endpoint=endpoint)
    get_hf_file_metadata(url, timeout=timeout, endpoint=endpoint, library_name="avb-zoo")


def _download(
    spec: ModelSpec, revision: str, cache: Path, endpoint: str, local_only: bool, progress: bool
) -> tuple[Path, str]:
    """Download (or find in the cache) every file of ``spec`` at one commit; returns (snapshot folder, commit)."""
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    repo_id = spec.hub_repo_id
    assert repo_id is not None
    common: dict[str, Any] = {
        "repo_id": repo_id,
        "cache_dir": cache,
        "endpoint": endpoint,
        "local_files_only": local_only,
        "library_name": "avb-zoo",
    }
    ordered = [p for p in REQUIRED if p in spec.files] + sorted(set(spec.files) - set(REQUIRED))
    what = ordered[0] if ordered else CONFIG_FILE
    if not progress:
        disable_progress_bars()
    try:
        with hub_settings(offline=local_only):
            if not local_only:
                _probe(repo_id, what, revision, endpoint)
            if not spec.files:
                what = "(snapshot)"
                folder = Path(snapshot_download(revision=revision, allow_patterns=UNHASHED_PATTERNS, **common))
                return folder, folder.name
            root: Path | None = None
            for rel in ordered:
                what = rel
                # After the first file, the commit it came from: all files match even if the branch moves meanwhile.
                try:
                    path = Path(hf_hub_download(filename=rel, revision=root.name if root else revision, **common))
                except EntryNotFoundError:
                    if rel in TEST_DATA_FILES and root is not None:  # published before exports carried test data
                        continue
                    raise
                root = root or snapshot_root(path, rel)
            assert root is not None
            return root, root.name
    except Exception as err:  # huggingface_hub's and httpx's errors, mapped to ours
        if is_connection_error(err):
            raise Unreachable(type(err).__name__) from None
        raise call_error(err, what, repo_id, revision, endpoint) from None
    finally:
        if not progress:
            enable_progress_bars()


def shipped(spec: ModelSpec, reason: str) -> Pulled:
    """The copy the package ships, checked against the catalogue's sha256."""
    folder = spec.local_dir
    assert folder is not None
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"the copy of {spec.id} shipped in {folder} lacks {missing}; reinstall avb-zoo")
    verify_files(folder, spec.files, f"the copy of {spec.id} shipped in {folder}", cache=None)
    detail = f"the copy shipped with the package ({reason})"
    files = dict(spec.files) if spec.files else None
    return Pulled(spec.id, folder, "shipped", detail, spec.hub_repo_id, None, None, bool(spec.files), files)


def fetch_pinned(
    spec: ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Pulled:
    """A catalogue model's files from the Hub, the cache or the shipped copy, saying which.

    With an explicit ``revision`` the copy the package ships never stands in: it is the catalogue's pinned
    files, not that revision.
    """
    if spec.hub_repo_id is None:
        if spec.local_dir is not None and revision is None:
            return shipped(spec, "it has no Hub repo")
        raise HubNotFound(f"{spec.id} has no weights (no Hub repo, no shipped copy){usable_instead(spec)}")
    repo_id = check_repo_id(spec.hub_repo_id)
    rev = revision or spec.hub_revision or "main"
    offline = offline or offline_mode()
    cache, endpoint = hub_cache_dir(cache_dir), hub_endpoint()
    unreachable = "offline mode" if offline else None
    located: tuple[Path, str] | None = None
    if not offline:
        try:
            located = _download(spec, rev, cache, endpoint, local_only=False, progress=progress)
        except Unreachable as err:
            unreachable = f"the Hub at {endpoint} could not be reached ({err})"
        except HubRepoNotFound as err:
            # A model the package ships but whose repo this endpoint lacks (not yet published, or another
            # endpoint): the shipped copy is the catalogue's own, hash-checked; an explicit revision is not.
            if revision is None and spec.local_dir is not None:
                return shipped(spec, str(err))
            raise
    if located is None:
        try:
            located = _download(spec, rev, cache, endpoint, local_only=True, progress=progress)
        except Unreachable:
            if spec.local_dir is not None and revision is None:
                return shipped(spec, f"{unreachable}, and the cache {cache} has no copy")
            if revision is not None:
                raise HubUnreachable(
                    f"cannot pull {spec.id} at revision {shown(revision)}: {unreachable} and the cache {cache} has no "
                    "copy of it (the copy shipped with avb-zoo is the catalogue's pinned files, not that revision)"
                ) from None
            raise HubUnreachable(
                f"cannot pull {spec.id} ({repo_id}@{rev}): {unreachable}, the cache {cache} has no copy and the "
                "package ships none" + ("; pull it once online" if offline else "")
            ) from None
    folder, commit = located
    verify_files(folder, spec.files, f"{repo_id}@{commit}", cache=cache)
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise HubNotFound(f"{repo_id}@{commit} lacks {missing}: not an avb-zoo model repo")
    if unreachable is None:
        source, where = "hub", f"{endpoint}/{repo_id} at revision {rev} (commit {commit})"
    else:
        source, where = "cache", f"the local cache, {repo_id} at commit {commit} ({unreachable})"
    if not spec.files:
        where += "; no sha256 in the registry, files not verified"
    files = dict(spec.files) if spec.files else None
    return Pulled(spec.id, folder, source, where, repo_id, rev, commit, bool(spec.files), files)


def _matches(folder: Path, files: dict[str, str], root: Path) -> bool:
    """Whether ``folder`` holds every catalogued file (test data may be absent) with the catalogue's sha256,
    each a file whose real path lies inside ``root`` (no link leads the read out of it)."""
    for rel, want in files.items():
        path = folder / rel
        if not path.exists():
            if rel in TEST_DATA_FILES:
                continue
            return False
        real = Path(os.path.realpath(path))
        if not (real.is_relative_to(root) and real.is_file()) or sha256_file(real) != want:
            return False
    return True


def local_copy(spec: ModelSpec, cache_dir: str | Path | None) -> Pulled | None:
    """A local copy of a catalogue model whose files all match the catalogue's sha256, or None.

    The catalogue pins every file by its hash, so such a copy is the model itself: commands that only use a
    model (sample, encode, eval, load) then need no request to the Hub, and no import of its client, which
    keeps them as fast by id as by folder. ``pull`` still asks the Hub. The cache is preferred to the copy the
    package ships; a copy that does not match is left for ``fetch_pinned`` to report or replace.
    """
    if not spec.files or spec.hub_repo_id is None:
        return None
    cache = hub_cache_dir(cache_dir)
    rev = spec.hub_revision or "main"
    commit = rev if _COMMIT.fullmatch(rev) else None
    ref = repo_cache_dir(cache, spec.hub_repo_id) / "refs" / rev
    if commit is None and ref.is_file() and not ref.is_symlink():
        commit = ref.read_text(encoding="ascii", errors="replace").strip()[:64]
    root = Path(os.path.realpath(cache))
    if commit and _COMMIT.fullmatch(commit):
        folder = snapshot_dir(cache, spec.hub_repo_id, commit)
        if folder.is_dir() and _matches(folder, spec.files, root):
            where = f"the local cache, {spec.hub_repo_id} at commit {commit}: every file matches the catalogue's sha256"
            return Pulled(spec.id, folder, "cache", where, spec.hub_repo_id, rev, commit, True, dict(spec.files))
    local = spec.local_dir
    if local is not None and local.is_dir() and _matches(local, spec.files, Path(os.path.realpath(local))):
        where = "the copy shipped with the package: every file matches the catalogue's sha256"
        return Pulled(spec.id, local, "shipped", where, spec.hub_repo_id, None, None, True, dict(spec.files))
    return None
