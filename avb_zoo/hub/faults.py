"""huggingface_hub's and httpx's exceptions, mapped to the zoo's typed errors (never with the token or headers).

``Unreachable`` stays inside the hub package: it means "try the cache or the shipped copy", which the pull
functions decide; callers only ever see ``HubUnreachable`` with a sentence saying what was tried.
"""

from __future__ import annotations

from avb_zoo.errors import HubAuthError, HubError, HubNotFound, HubRepoNotFound, shown


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
