"""Pull a Hub repo that is not in the catalogue (``hf-hub:ORG/NAME[@REV]``), checked against the Hub's own hashes.

The catalogue vouches for its models' files; for any other repo the Hub itself does: the revision is
resolved to one commit, and every file is checked against the sha256 the Hub states for that commit's LFS
objects (the git blob sha1 for small files). A mismatch deletes the file (inside the cache only) and fails
naming it. config.json is fetched and checked (size, types, sizes in range) before the weights; a repo
without config.json / model.safetensors fails naming what it holds instead (pickles are never fetched).
What was verified is recorded beside the files (``avb-zoo-pull.json``: repo, revision, commit, sha256 of
each file), so offline mode serves the cache only where such a record exists and the files still match it.
A failed pull removes what it added to the cache: nothing half-pulled stays behind.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from avb_zoo.catalogue.reference import HubRef
from avb_zoo.errors import AVBZooError, ChecksumError, ConfigError, HubNotFound, HubUnreachable
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
from avb_zoo.hub.hashes import git_blob_sha1, remove_cached, repo_cache_dir, sha256_file, snapshot_dir
from avb_zoo.modelfile.config_file import read_config_json, read_model_config
from avb_zoo.modelfile.files import PUSHED, REQUIRED
from avb_zoo.modelfile.model_config import validate_config
from avb_zoo.util.bounded import loads_json, read_regular
from avb_zoo.util.fileio import atomic_write_bytes, atomic_write_json

RECORD = "avb-zoo-pull.json"
MAX_RECORD_BYTES = 1 << 16
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")


def _expected(siblings: Any) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """(file -> (kind, hash) for the zoo's files the commit holds, every file name of the commit)."""
    names, wanted = [], {}
    for sib in siblings or []:
        rel = sib.rfilename
        names.append(rel)
        if rel not in PUSHED:
            continue
        lfs = getattr(sib, "lfs", None)
        if lfs is not None and getattr(lfs, "sha256", None):
            wanted[rel] = ("sha256", str(lfs.sha256))
        elif getattr(sib, "blob_id", None):
            wanted[rel] = ("git-sha1", str(sib.blob_id))
        else:
            raise HubNotFound(f"the Hub states no hash for {rel}; avb-zoo opens only files it can verify")
    return wanted, names


def _not_a_model(ref: HubRef, commit: str, names: list[str], missing: list[str]) -> HubNotFound:
    pickles = sorted(n for n in names if n.lower().endswith(PICKLE_SUFFIXES))
    held = f"; it holds pickle files {pickles[:4]}, which avb-zoo never opens (safetensors only)" if pickles else ""
    return HubNotFound(f"{ref.repo_id}@{commit[:12]} has no {', '.join(missing)}: not an avb-zoo model repo{held}")


def _check_config(folder: Path, where: str) -> None:
    """The repo's config.json, checked before any weights are fetched (a hostile one fails here)."""
    try:
        config = read_config_json(folder)
        validate_config(config)
        read_model_config(folder)
    except ConfigError as err:
        raise ConfigError(f"{where}: config.json is not a valid avb-zoo config: {err}") from None


def _verify(path: Path, rel: str, kind: str, want: str, where: str) -> str:
    got = sha256_file(path) if kind == "sha256" else git_blob_sha1(path)
    if got != want:
        raise ChecksumError(
            f"{where}: {rel} has {kind} {got[:16]}..., the Hub states {want[:16]}... (a corrupt or tampered "
            "download; it was deleted from the cache, pull again)"
        )
    return got if kind == "sha256" else sha256_file(path)


def _download_all(ref: HubRef, rev: str, cache: Path, endpoint: str, progress: bool) -> tuple[Path, str, dict]:
    """Resolve ``rev`` to a commit and download and verify the zoo's files of it; returns (folder, commit, sha256)."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    what, added = "(repo info)", []
    api = HfApi(endpoint=endpoint, library_name="avb-zoo")
    if not progress:
        disable_progress_bars()
    try:
        with hub_settings():
            info = api.model_info(ref.repo_id, revision=rev, files_metadata=True)
            commit = str(info.sha)
            if not _COMMIT.match(commit):
                raise HubNotFound(f"the Hub at {endpoint} answered no commit for {ref.repo_id}@{rev}")
            wanted, names = _expected(info.siblings)
            missing = [f for f in REQUIRED if f not in wanted]
            if missing:
                raise _not_a_model(ref, commit, names, missing)
            folder, where = snapshot_dir(cache, ref.repo_id, commit), f"{ref.repo_id}@{commit[:12]}"
            hashes: dict[str, str] = {}
            for rel in ["config.json", *sorted(set(wanted) - {"config.json"})]:
                what = rel
                existed = (folder / rel).exists()
                path = Path(
                    hf_hub_download(
                        ref.repo_id,
                        rel,
                        revision=commit,
                        cache_dir=cache,
                        endpoint=endpoint,
                        library_name="avb-zoo",
                    )
                )
                if not existed:
                    added.append(path)
                hashes[rel] = _verify(path, rel, *wanted[rel], where)
                if rel == "config.json":
                    _check_config(folder, where)
            atomic_write_json(folder / RECORD, _record(ref, rev, commit, endpoint, hashes))
            if rev != commit:  # as huggingface_hub does for a name: refs/<rev> holds its commit (read offline)
                atomic_write_bytes(folder.parent.parent / "refs" / rev, commit.encode())
            return folder, commit, hashes
    except Exception as err:
        for path in added:  # nothing half-pulled stays in the cache
            remove_cached(path, cache)
        if isinstance(err, AVBZooError):
            raise
        if is_connection_error(err):
            raise Unreachable(type(err).__name__) from None
        raise call_error(err, what, ref.repo_id, rev, endpoint) from None
    finally:
        if not progress:
            enable_progress_bars()


def _record(ref: HubRef, rev: str, commit: str, endpoint: str, hashes: dict[str, str]) -> dict[str, Any]:
    return {"repo_id": ref.repo_id, "revision": rev, "commit": commit, "endpoint": endpoint, "sha256": hashes}


def _cached(ref: HubRef, rev: str, cache: Path) -> tuple[Path, str, dict[str, str]] | None:
    """The verified copy of ``rev`` in the cache (re-checked against its record), or None."""
    repo_dir = repo_cache_dir(cache, ref.repo_id)
    commit = rev
    if not _COMMIT.match(rev):
        ref_file = repo_dir / "refs" / rev
        if not ref_file.is_file() or ref_file.is_symlink():
            return None
        commit = ref_file.read_text(encoding="ascii", errors="replace").strip()
        if not _COMMIT.match(commit):
            return None
    folder = snapshot_dir(cache, ref.repo_id, commit)
    record_path = folder / RECORD
    if not record_path.is_file():
        return None
    record = loads_json(read_regular(record_path, MAX_RECORD_BYTES, HubNotFound, RECORD), record_path, HubNotFound)
    if not isinstance(record, dict) or record.get("commit") != commit:
        return None
    hashes = record.get("sha256")
    if not isinstance(hashes, dict) or any(f not in hashes for f in REQUIRED):
        return None
    for rel, want in sorted(hashes.items()):
        if rel not in PUSHED or not isinstance(want, str):
            return None
        path = folder / rel
        if not path.is_file() or sha256_file(path) != want:
            if path.exists():
                remove_cached(path, cache)
            raise ChecksumError(
                f"{ref.repo_id}@{commit[:12]} in the cache: {rel} no longer matches the sha256 recorded when it "
                "was pulled (it was deleted from the cache; pull again online)"
            )
    return folder, commit, dict(hashes)


def fetch_repo(
    ref: HubRef,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Pulled:
    """The verified files of a Hub repo at a revision (an argument beats the one in the id; default main)."""
    rev = revision or ref.revision or "main"
    offline = offline or offline_mode()
    cache, endpoint = hub_cache_dir(cache_dir), hub_endpoint()
    unreachable = "offline mode" if offline else None
    if not offline:
        try:
            folder, commit, hashes = _download_all(ref, rev, cache, endpoint, progress)
            where = f"{endpoint}/{ref.repo_id} at revision {rev} (commit {commit}); files verified against the Hub's"
            where += " own hashes"
            return Pulled(ref.id, folder, "hub", where, ref.repo_id, rev, commit, True, hashes, ref.note)
        except Unreachable as err:
            unreachable = f"the Hub at {endpoint} could not be reached ({err})"
    found = _cached(ref, rev, cache)
    if found is None:
        raise HubUnreachable(
            f"cannot pull {ref.id}@{rev}: {unreachable}, and the cache {cache} has no verified copy of it"
            + ("; pull it once online" if offline else "")
        )
    folder, commit, hashes = found
    where = f"the local cache, {ref.repo_id} at commit {commit} ({unreachable}); files re-checked against the record"
    return Pulled(ref.id, folder, "cache", where, ref.repo_id, rev, commit, True, hashes, ref.note)


__all__ = ["RECORD", "fetch_repo"]
