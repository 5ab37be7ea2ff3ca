"""Publishing a model folder: its files, the model card and the sample grid generated from them, one commit.

The model is passed in, already loaded strictly by the caller (the modelling layer), so a broken model is never
published and this layer needs no torch of its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from avb_zoo.cards.card import SAMPLE_GRID, read_metrics_file, render_model_card
from avb_zoo.cards.images import sample_grid_png
from avb_zoo.hub.hashes import sha256_file
from avb_zoo.hub.upload import check_target, push_files, upload
from avb_zoo.modelfile.provenance import read_training_record


def card_files(folder: str | Path, model: Any, repo_id: str) -> tuple[dict[str, Path], dict[str, bytes]]:
    """(the folder's files to publish, the files generated from them: the model card README.md and its sample
    grid). ``push`` uploads both kinds; a model shipped with the package keeps the generated ones beside its
    files, so its card is the one its Hub repo gets."""
    folder = Path(folder)
    files = push_files(folder)
    metrics = read_metrics_file(files["metrics.json"]) if "metrics.json" in files else {}
    hashes = {rel: sha256_file(path) for rel, path in files.items()}
    training = read_training_record(folder) if "training.json" in files else {}
    picture = sample_grid_png(folder, model.config, model, "onnx/sampler.onnx" in files)
    generated: dict[str, bytes] = {}
    if picture is not None:
        hashes[SAMPLE_GRID] = hashlib.sha256(picture).hexdigest()
        generated[SAMPLE_GRID] = picture
    card = render_model_card(model.config, metrics, repo_id, hashes, training=training)
    return files, {"README.md": card.encode(), **generated}


def publish(
    folder: str | Path,
    model: Any,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Publish ``folder`` (whose loaded model is ``model``) to ``repo_id`` as one commit; returns its URL."""
    from avb_zoo import __version__

    check_target(repo_id, revision)
    files, generated = card_files(folder, model, repo_id)
    message = commit_message or f"Upload {model.config.get('id') or 'model'} with avb-zoo {__version__}"
    return upload(
        files,
        generated,
        repo_id,
        message=message,
        private=private,
        revision=revision,
        token=token,
        endpoint=endpoint,
    )
