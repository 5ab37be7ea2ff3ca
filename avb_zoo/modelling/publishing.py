"""``avb_zoo.push``: publish a model folder, loaded strictly first so that a broken model is never published."""

from __future__ import annotations

import logging
from pathlib import Path

from avb_zoo.cards.publish import card_files, publish
from avb_zoo.hub.upload import check_target, push_files
from avb_zoo.modelfile.layout import REPORT
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import ADVERSARY_FILE

__all__ = ["folder_card_files", "has_graphs", "push"]

logger = logging.getLogger("avb_zoo")


def has_graphs(folder: str | Path) -> bool:
    """Whether ``folder`` holds exported, verified ONNX graphs (their report), which the runtime needs."""
    return REPORT in push_files(Path(folder))


def _load_strictly(folder: str | Path) -> AVBModel:
    """The folder's model, config and weights checked against each other (the adversary only if it is pushed)."""
    return load(Path(folder), with_adversary=ADVERSARY_FILE in push_files(Path(folder)))


def folder_card_files(folder: str | Path, repo_id: str) -> dict[str, bytes]:
    """The files a push generates for ``folder`` (the model card README.md and its sample grid), by name."""
    return card_files(folder, _load_strictly(folder), repo_id)[1]


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
    check_target(repo_id, revision)
    model = _load_strictly(folder)
    if not has_graphs(folder):
        logger.warning(
            "%s holds no ONNX graphs: the repo will serve torch only (its card says so); "
            "`avb-zoo export %s` adds and verifies them, `avb-zoo push` does so itself",
            folder,
            folder,
        )
    return publish(
        folder,
        model,
        repo_id,
        private=private,
        revision=revision,
        commit_message=commit_message,
        token=token,
        endpoint=endpoint,
    )
