"""Shared by the page tests: the shipped toy model, and a skip when onnxruntime-web has not been prepared."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avb_zoo.errors import WebError
from avb_zoo.web.vendor import runtime_files

TOY = Path(__file__).resolve().parents[1] / "models" / "toy-avb"


def require_runtime() -> None:
    """Skip (saying how to fix it) when the pinned onnxruntime-web files are not prepared on this machine."""
    try:
        runtime_files()
    except WebError as err:
        pytest.skip(f"onnxruntime-web not prepared: {err}")


def toy_copy(folder: Path) -> Path:
    """A private copy of the toy model folder (tests may break it)."""
    shutil.copytree(TOY, folder)
    return folder
