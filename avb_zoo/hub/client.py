"""The Hub client's common ground: settings read when an operation starts, huggingface_hub's errors mapped to
the zoo's, and ``Pulled``, the record every pull returns.

``HF_ENDPOINT``, ``HF_HUB_CACHE`` / ``HF_HOME`` and ``HF_HUB_OFFLINE`` are read at call time, so a process that
changes them (a test, a notebook) is obeyed; huggingface_hub itself reads some of them once, at import. Errors
never include the token or request headers. ``Unreachable`` stays inside the hub package: it means "try the
cache or the shipped copy", which the pull functions decide; callers only ever see ``HubUnreachable``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from avb_zoo.errors import HubAuthError, HubError, HubNotFound, HubRepoNotFound, shown

OFFICIAL_ENDPOINT = "https://huggingface.co"


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
def hub_settings(offline: bool = False, endpoint: str | None = None) -> Iterator[None]:
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


class Unreachable(Exception):
    """The Hub could not be reached (or offline mode is on): the caller falls back or says so."""


def is_connection_error(err: Exception) -> bool:
    """Whether ``err`` is a transport failure (no answer), as opposed to an answer the Hub gave."""
    from huggingface_hub.utils import httpx

    return isinstance(err, httpx.TransportError | ConnectionError | TimeoutError)


def call_error(err: Exception, what: str, repo_id: str, revision: str, endpoint: str) -> Exception:
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
        return Unreachable("offline mode" if isinstance(err, OfflineModeIsEnabled) else "no connection")
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
            return Unreachable(f"the server answered {status}")
        return HubError(f"the Hub at {endpoint} answered {status} for {repo_id}@{revision} {what}")
    return Unreachable(type(err).__name__)


@dataclass(frozen=True)
class Pulled:
    """Where a model's folder is and where it came from."""

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

    @property
    def hashes(self) -> dict[str, str] | None:
        """The sha256 of each file that was checked, the only files of the folder that may be opened; None for a
        folder nobody vouched for file by file (the user's own, or a plugin model without hashes)."""
        return dict(self.files) if self.verified and self.files else None

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
