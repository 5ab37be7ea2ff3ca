"""Pull and push models through the Hugging Face Hub (one model per repo), checking every file's sha256.

``pull`` downloads the catalogue's files at a pinned revision into the standard HF cache (honouring
HF_ENDPOINT, HF_TOKEN, HF_HOME and HF_HUB_OFFLINE at call time, not only at import). Every file is checked
against the catalogue's sha256; a mismatch deletes the file from the cache and fails. When the Hub cannot be
reached, or offline mode is on and the cache has no copy, the copy shipped inside the package serves, and
the result says so. Offline mode never opens a connection.

``push`` publishes a model folder as one commit: config.json, model.safetensors (+ adversary.safetensors),
the ONNX graphs and their verification report, metrics.json, and a generated model card. Only those files,
and only regular files inside the folder, are uploaded (``avb_zoo.modelfile.files``); the others are reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avb_zoo.catalogue.names import check_repo_id, check_revision
from avb_zoo.errors import (
    AVBZooError,
    CheckpointError,
    ChecksumError,
    HubAuthError,
    HubError,
    HubNotFound,
    HubRepoNotFound,
    HubUnreachable,
    ModelNotFound,
    shown,
)
from avb_zoo.modelfile.files import PUSHED, REQUIRED, TEST_DATA_FILES, remove_cached, select_push_files
from avb_zoo.util.fileio import is_folder

if TYPE_CHECKING:
    from avb_zoo.catalogue.registry import ModelSpec

__all__ = ["Pulled", "fetch", "pull", "push", "resolve_checked", "resolve_local", "sha256_file"]

logger = logging.getLogger("avb_zoo")
OFFICIAL_ENDPOINT = "https://huggingface.co"
CONFIG_FILE = "config.json"
# When the registry has no hashes for a model (some plugins), these are what a model folder holds.
UNHASHED_PATTERNS = list(PUSHED)


@dataclass(frozen=True)
class Pulled:
    """Where a pulled model is and where it came from."""

    id: str
    folder: Path
    source: str  # "hub", "cache", "shipped" or "folder"
    detail: str  # a sentence for people
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None
    verified: bool = True
    files: dict[str, str] | None = None  # the sha256 of each file that was checked (the only ones to open)
    note: str | None = None  # how the name was read, when that needs saying (a bare ORG/NAME taken as a repo)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder": str(self.folder),
            "source": self.source,
            "detail": self.detail,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "verified": self.verified,
            "sha256": dict(self.files) if self.files else None,
            "note": self.note,
        }


# ------------------------------------------------------------------------------------------ environment
def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def hub_endpoint(endpoint: str | None = None) -> str:
    """The Hub URL: the argument, else HF_ENDPOINT as it is now, else huggingface_hub's default."""
    if endpoint:
        return endpoint.rstrip("/")
    if os.environ.get("HF_ENDPOINT"):
        return os.environ["HF_ENDPOINT"].rstrip("/")
    from huggingface_hub import constants

    return constants.ENDPOINT


def hub_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The HF cache: the argument, else HF_HUB_CACHE, else $HF_HOME/hub, else huggingface_hub's default."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def offline_mode() -> bool:
    """HF_HUB_OFFLINE, read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    return constants.is_offline_mode() or _truthy(os.environ.get("HF_HUB_OFFLINE"))


@contextlib.contextmanager
def _hub_settings(offline: bool = False, endpoint: str | None = None) -> Iterator[None]:
    """huggingface_hub's import-time switches, set for the duration of one avb-zoo operation.

    Offline: HF_HUB_OFFLINE, so that no request at all is made (huggingface_hub otherwise fetches a telemetry
    list even for cache-only lookups). Always: no telemetry, so the only requests are for the model's files and
    nothing is written outside the cache. Pushing to an endpoint other than huggingface.co: plain LFS uploads,
    since such a Hub may have no Xet storage.
    """
    from huggingface_hub import constants

    names = ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_HUB_DISABLE_XET")
    old = {name: getattr(constants, name) for name in names}
    constants.HF_HUB_DISABLE_TELEMETRY = True
    if offline:
        constants.HF_HUB_OFFLINE = True
    if endpoint is not None and endpoint != OFFICIAL_ENDPOINT:
        constants.HF_HUB_DISABLE_XET = True
    try:
        yield
    finally:
        for name, value in old.items():
            setattr(constants, name, value)


# ---------------------------------------------------------------------------------------------- hashing
def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
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


# ------------------------------------------------------------------------------------------ downloading
class _Unreachable(Exception):
    """Internal: the Hub could not be reached (or offline mode is on)."""


def _snapshot_root(path: Path, rel: str) -> Path:
    root = path
    for _ in rel.split("/"):
        root = root.parent
    return root


def _hub_call_error(err: Exception, what: str, repo_id: str, revision: str, endpoint: str) -> Exception:
    """Turn a huggingface_hub error into one of ours; never includes the token or request headers."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = getattr(getattr(err, "response", None), "status_code", None)
    if isinstance(err, OfflineModeIsEnabled | LocalEntryNotFoundError):
        return _Unreachable("offline mode" if isinstance(err, OfflineModeIsEnabled) else "no connection")
    if status == 401 and "invalid credentials" in str(err).lower():
        return HubAuthError(f"the Hub at {endpoint} refused the token (invalid credentials): check HF_TOKEN")
    if isinstance(err, RevisionNotFoundError):
        return HubNotFound(f"revision {shown(revision)} not found in {repo_id} on {endpoint}")
    if isinstance(err, EntryNotFoundError):
        return HubNotFound(f"{repo_id} at revision {shown(revision)} has no file {shown(what)} (on {endpoint})")
    if isinstance(err, RepositoryNotFoundError):
        return HubRepoNotFound(
            f"repository {repo_id} not found on {endpoint} (if it is private, set HF_TOKEN to a token that can read it)"
        )
    if isinstance(err, HfHubHTTPError):
        if status is not None and status >= 500:
            return _Unreachable(f"the server answered {status}")
        return HubError(f"the Hub at {endpoint} answered {status} for {repo_id}@{revision} {what}")
    return _Unreachable(type(err).__name__)


def _is_connection_error(err: Exception) -> bool:
    from huggingface_hub.utils import httpx

    return isinstance(err, httpx.TransportError | ConnectionError | TimeoutError)


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
        with _hub_settings(offline=local_only):
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
                root = root or _snapshot_root(path, rel)
            assert root is not None
            return root, root.name
    except Exception as err:  # huggingface_hub's and httpx's errors, mapped to ours
        if _is_connection_error(err):
            raise _Unreachable(type(err).__name__) from None
        raise _hub_call_error(err, what, repo_id, revision, endpoint) from None
    finally:
        if not progress:
            enable_progress_bars()


def _shipped(spec: ModelSpec, reason: str) -> Pulled:
    folder = spec.local_dir
    assert folder is not None
    missing = [f for f in REQUIRED if not (folder / f).is_file()]
    if missing:
        raise CheckpointError(f"the copy of {spec.id} shipped in {folder} lacks {missing}; reinstall avb-zoo")
    verify_files(folder, spec.files, f"the copy of {spec.id} shipped in {folder}", cache=None)
    detail = f"the copy shipped with the package ({reason})"
    files = dict(spec.files) if spec.files else None
    return Pulled(spec.id, folder, "shipped", detail, spec.hub_repo_id, None, None, bool(spec.files), files)


def fetch(
    model_id: str | ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Pulled:
    """Like ``pull``, but says where the model came from (Hub, cache or the shipped copy).

    ``model_id`` is a catalogue id or a Hub repo (``hf-hub:ORG/NAME[@REV]``, or ``ORG/NAME`` where no
    registered namespace is called ORG; see ``avb_zoo.catalogue.reference``). With an explicit ``revision`` the copy
    the package ships never stands in: it is the catalogue's pinned files, not that revision.
    """
    from avb_zoo.catalogue.reference import HubRef, resolve_name
    from avb_zoo.catalogue.registry import spec as find_spec

    if revision is not None:
        check_revision(revision)
    name = model_id if not isinstance(model_id, str) else resolve_name(model_id)
    if isinstance(name, HubRef):
        from avb_zoo.hub.repo import fetch_repo

        return fetch_repo(name, revision=revision, cache_dir=cache_dir, offline=offline, progress=progress)
    spec = find_spec(name)
    if spec.hub_repo_id is None:
        if spec.local_dir is not None and revision is None:
            return _shipped(spec, "it has no Hub repo")
        raise HubNotFound(f"{spec.id} has no Hub repo and the package ships no copy of it")
    repo_id = check_repo_id(spec.hub_repo_id)
    rev = revision or spec.hub_revision or "main"
    offline = offline or offline_mode()
    cache, endpoint = hub_cache_dir(cache_dir), hub_endpoint()
    unreachable = "offline mode" if offline else None
    located: tuple[Path, str] | None = None
    if not offline:
        try:
            located = _download(spec, rev, cache, endpoint, local_only=False, progress=progress)
        except _Unreachable as err:
            unreachable = f"the Hub at {endpoint} could not be reached ({err})"
        except HubRepoNotFound as err:
            # A model the package ships but whose repo this endpoint lacks (not yet published, or another
            # endpoint): the shipped copy is the catalogue's own, hash-checked; an explicit revision is not.
            if revision is None and spec.local_dir is not None:
                return _shipped(spec, str(err))
            raise
    if located is None:
        try:
            located = _download(spec, rev, cache, endpoint, local_only=True, progress=progress)
        except _Unreachable:
            if spec.local_dir is not None and revision is None:
                return _shipped(spec, f"{unreachable}, and the cache {cache} has no copy")
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


def pull(
    model_id: str | ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> Path:
    """The local folder of ``model_id``'s files at ``revision`` (default: the catalogue's), each sha256-checked."""
    return fetch(model_id, revision=revision, cache_dir=cache_dir, offline=offline).folder


def resolve_local(
    id_or_dir: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> Path:
    """A model folder for a path to one, or for a model id (pulled, or the shipped copy)."""
    return resolve_checked(id_or_dir, revision, cache_dir, offline)[0]


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


def _catalogue_copy(name: str, cache_dir: str | Path | None) -> Pulled | None:
    """A local copy of a catalogue model whose files all match the catalogue's sha256, or None.

    The catalogue pins every file by its hash, so such a copy is the model itself: commands that only use a
    model (sample, encode, eval, load) then need no request to the Hub, and no import of its client, which
    keeps them as fast by id as by folder. ``pull`` still asks the Hub. The cache is preferred to the copy the
    package ships; a copy that does not match is left for ``fetch`` to report or replace.
    """
    from avb_zoo.catalogue.reference import HubRef, resolve_name
    from avb_zoo.catalogue.registry import spec as find_spec

    try:
        resolved = resolve_name(name)
        if isinstance(resolved, HubRef):
            return None
        spec = find_spec(resolved)
    except AVBZooError:
        return None  # fetch raises the same error with its own context
    if not spec.files or spec.hub_repo_id is None:
        return None
    cache = hub_cache_dir(cache_dir)
    rev = spec.hub_revision or "main"
    repo_dir = cache / ("models--" + spec.hub_repo_id.replace("/", "--"))
    commit = rev if re.fullmatch(r"[0-9a-f]{40}", rev) else None
    ref = repo_dir / "refs" / rev
    if commit is None and ref.is_file() and not ref.is_symlink():
        commit = ref.read_text(encoding="ascii", errors="replace").strip()[:64]
    root = Path(os.path.realpath(cache))
    if commit and re.fullmatch(r"[0-9a-f]{40}", commit):
        folder = repo_dir / "snapshots" / commit
        if folder.is_dir() and _matches(folder, spec.files, root):
            where = f"the local cache, {spec.hub_repo_id} at commit {commit}: every file matches the catalogue's sha256"
            return Pulled(spec.id, folder, "cache", where, spec.hub_repo_id, rev, commit, True, dict(spec.files))
    local = spec.local_dir
    if local is not None and local.is_dir() and _matches(local, spec.files, Path(os.path.realpath(local))):
        where = "the copy shipped with the package: every file matches the catalogue's sha256"
        return Pulled(spec.id, local, "shipped", where, spec.hub_repo_id, None, None, True, dict(spec.files))
    return None


def resolve_checked(
    id_or_dir: str | Path,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> tuple[Path, dict[str, str] | None]:
    """(model folder, the sha256 of each file checked in it), for a path to a folder or a model id.

    The user's own folder is theirs to trust: None. For an id, only the catalogue's files were checked, so
    only they may be opened (a file planted beside them in the cache was not); None where the registry holds
    no hashes for the model (the pull said its files are not verified).
    """
    path = Path(id_or_dir).expanduser()
    if is_folder(path):
        if not (path / CONFIG_FILE).is_file():
            raise CheckpointError(f"{path} is a folder but holds no {CONFIG_FILE}: not a model folder")
        return path, None
    text = str(id_or_dir)
    if isinstance(id_or_dir, Path) or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text} is not a model folder (no such directory)")
    if revision is None:
        local = _catalogue_copy(text, cache_dir)
        if local is not None:
            return local.folder, dict(local.files or {})
    try:
        pulled = fetch(text, revision=revision, cache_dir=cache_dir, offline=offline)
    except (ModelNotFound, HubNotFound, HubUnreachable) as err:
        raise type(err)(f"{err} ({shown(text)} is not a folder either)") from None
    if pulled.note:
        logger.warning("%s", pulled.note)
    return pulled.folder, (dict(pulled.files) if pulled.verified and pulled.files else None)


# --------------------------------------------------------------------------------------------- pushing
def push_files(folder: Path) -> dict[str, Path]:
    """The files a push uploads, by path in the repo: the model, its ONNX graphs, their report and metrics."""
    return select_push_files(Path(folder))[0]


def push_skipped(folder: Path) -> dict[str, str]:
    """The files of ``folder`` a push leaves out, each with the reason."""
    return select_push_files(Path(folder))[1]


def card_files(folder: str | Path, repo_id: str) -> tuple[dict[str, Path], Any, dict[str, bytes]]:
    """(the folder's files to publish, its model loaded strictly, the files generated from them: the model
    card README.md and its sample grid). ``push`` uploads both kinds; a model shipped with the package keeps
    the generated ones beside its files, so its card is the one its Hub repo gets."""
    from avb_zoo.cards.card import SAMPLE_GRID, read_metrics_file, render_model_card
    from avb_zoo.cards.images import sample_grid_png
    from avb_zoo.modelfile.provenance import read_training_record
    from avb_zoo.modelling.model_io import load

    files = push_files(Path(folder))
    model = load(folder, with_adversary="adversary.safetensors" in files)  # strict: config and weights agree
    metrics = read_metrics_file(files["metrics.json"]) if "metrics.json" in files else {}
    hashes = {rel: sha256_file(path) for rel, path in files.items()}
    training = read_training_record(Path(folder)) if "training.json" in files else {}
    picture = sample_grid_png(Path(folder), model.config, model, "onnx/sampler.onnx" in files)
    generated: dict[str, bytes] = {}
    if picture is not None:
        hashes[SAMPLE_GRID] = hashlib.sha256(picture).hexdigest()
        generated[SAMPLE_GRID] = picture
    card = render_model_card(model.config, metrics, repo_id, hashes, training=training)
    return files, model, {"README.md": card.encode(), **generated}


def push(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    *,
    endpoint: str | None = None,
) -> str:
    """Publish a model folder to ``repo_id`` as one commit (with a generated model card); returns its URL.

    The folder is loaded strictly first, so a broken model is never published. ``token`` defaults to
    HF_TOKEN or the stored login; ``revision`` is a branch, created from main when it does not exist.
    """
    from avb_zoo import __version__

    check_repo_id(repo_id)
    if revision is not None:
        check_revision(revision)
    files, model, generated = card_files(folder, repo_id)

    from huggingface_hub import CommitOperationAdd, HfApi

    url = hub_endpoint(endpoint)
    api = HfApi(endpoint=url, token=token, library_name="avb-zoo", library_version=__version__)
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files.items()]
    operations += [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=data) for rel, data in generated.items()]
    message = commit_message or f"Upload {model.config.get('id') or 'model'} with avb-zoo {__version__}"
    what = "the commit"
    try:
        with _hub_settings(endpoint=url):
            what = "creating the repo"
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None and revision != "main":
                what = f"creating branch {shown(revision)}"
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            what = "the commit"
            info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
    except Exception as err:
        if _is_connection_error(err):
            raise HubUnreachable(f"cannot reach the Hub at {url} to push {repo_id}") from None
        from huggingface_hub.errors import HfHubHTTPError

        status = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(err, HfHubHTTPError) and status in (401, 403):
            raise HubAuthError(
                f"the Hub at {url} refused to let this token write to {repo_id} ({what}): "
                "set HF_TOKEN to a token with write access"
            ) from None
        mapped = _hub_call_error(err, what, repo_id, revision or "main", url)
        if isinstance(mapped, _Unreachable):
            raise HubUnreachable(f"pushing {repo_id} to {url} failed during {what}: {mapped}") from None
        raise mapped from None
    return info.commit_url
