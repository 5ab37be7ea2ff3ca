"""The Hub client's settings, read when an operation starts (not only at import), and its import-time switches.

``HF_ENDPOINT``, ``HF_HUB_CACHE`` / ``HF_HOME`` and ``HF_HUB_OFFLINE`` are read at call time, so a process that
changes them (a test, a notebook) is obeyed; huggingface_hub itself reads some of them once, at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

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
