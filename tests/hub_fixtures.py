"""Pytest fixture: a local Hub (``tests/hub_server.py``) that the real ``huggingface_hub`` client talks to.

Import it into a test module with ``from hub_fixtures import hub_server  # noqa: F401`` (or from conftest
with ``from hub_fixtures import *``).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hub_server import HubServer

__all__ = ["HubFixture", "hub_server"]

TEST_TOKEN = "hf_test_write"


@dataclass
class HubFixture:
    """What the ``hub_server`` fixture yields."""

    server: HubServer
    endpoint: str
    token: str
    hf_home: Path

    def api(self, token: str | bool | None = None):  # -> huggingface_hub.HfApi
        """An ``HfApi`` bound to this endpoint (default: the valid write token; ``False`` for none)."""
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.endpoint, token=self.token if token is None else token)


@pytest.fixture
def hub_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubFixture]:
    """Start a local Hub on 127.0.0.1 and isolate the client: no Xet, no stored token, a temporary HF_HOME.

    Also points ``huggingface_hub``'s frozen endpoint constants at the server, so code that takes no
    ``endpoint=`` (the ``ModelHubMixin`` ``push_to_hub`` / ``from_pretrained``) reaches it too, and sets
    ``HF_ENDPOINT`` for subprocesses.
    """
    import huggingface_hub.constants as constants

    hf_home = tmp_path / "hf_home"
    hf_home.mkdir()
    server = HubServer(tokens={TEST_TOKEN})
    endpoint = server.start()
    try:
        env = {
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": str(hf_home / "hub"),
            "HF_ENDPOINT": endpoint,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for name in (
            "HF_TOKEN",
            "HUGGING_FACE_HUB_TOKEN",
            "HF_HUB_OFFLINE",
            "HF_OIDC_RESOURCE",
            "HF_XET_CACHE",
        ):
            monkeypatch.delenv(name, raising=False)
        patched = {
            "HF_HUB_DISABLE_XET": True,
            "HF_HUB_OFFLINE": False,
            "HF_HUB_DISABLE_TELEMETRY": True,
            "HF_HOME": str(hf_home),
            "HF_HUB_CACHE": str(hf_home / "hub"),
            "HUGGINGFACE_HUB_CACHE": str(hf_home / "hub"),
            "HF_ASSETS_CACHE": str(hf_home / "assets"),
            "HF_XET_CACHE": str(hf_home / "xet"),
            "HF_TOKEN_PATH": str(hf_home / "token"),
            "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens"),
            "ENDPOINT": endpoint,
            "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        }
        for name, value in patched.items():
            monkeypatch.setattr(constants, name, value, raising=False)
        try:  # the module-level `HfApi()` behind `huggingface_hub.create_repo` & co. froze the endpoint too
            from huggingface_hub import hf_api

            monkeypatch.setattr(hf_api.api, "endpoint", endpoint, raising=False)
        except ImportError:
            pass
        yield HubFixture(server=server, endpoint=endpoint, token=TEST_TOKEN, hf_home=hf_home)
    finally:
        server.stop()
