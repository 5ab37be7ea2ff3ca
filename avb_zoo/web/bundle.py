"""``avb-zoo export-web``: one model's browser page as a static folder, written all or nothing.

The folder holds the page (index.html, app.js, stream.js), ``model/page.json`` (what the page needs to know:
sizes, noise size, image layout, card metrics, the streams' numbers), the model's config.json and its
sampler and encoder graphs, and the pinned onnxruntime-web files in ``ort/``. Every graph is checked against
config.json here (the runtime's own checks), so a folder that exports is one the page can run.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

from avb_zoo.errors import GraphError, OutputError, WebError
from avb_zoo.modelfile.layout import CONFIG_FILE, image_shape_of
from avb_zoo.runtime import stream
from avb_zoo.runtime.graph_checks import read_checked, verified_graph
from avb_zoo.runtime.locate import ModelFolder, open_model_folder
from avb_zoo.runtime.session import GraphSession
from avb_zoo.util.fileio import atomic_write_bytes
from avb_zoo.web.vendor import ORT_WEB_VERSION, runtime_files

PAGE_FILES = ("index.html", "app.js", "stream.js")
MANIFEST = "model/page.json"  # also marks a folder as one export-web wrote (and may replace)
PAGE_GRAPHS = ("sampler", "encoder")


MAX_PAGE_FILE = 1 << 20  # config.json and metrics.json: a few kB


def _read(folder: Path, rel: str, hashes: Mapping[str, str] | None) -> bytes:
    """A file of the model folder, bounded; for a catalogued model only one whose sha256 was checked."""
    return read_checked(folder, rel, MAX_PAGE_FILE, hashes)


def card_metrics(folder: Path, hashes: Mapping[str, str] | None = None) -> dict[str, float]:
    """The numeric top-level fields of the folder's metrics.json (the card's figures); none without one."""
    if not (folder / "metrics.json").is_file() or (hashes is not None and "metrics.json" not in hashes):
        return {}
    try:
        metrics = json.loads(_read(folder, "metrics.json", hashes))
    except (OSError, ValueError, RecursionError, GraphError):
        return {}
    if not isinstance(metrics, dict):
        return {}
    return {k: v for k, v in sorted(metrics.items()) if isinstance(v, int | float) and not isinstance(v, bool)}


def page_files(id_or_dir: str | Path | ModelFolder) -> dict[str, bytes]:
    """Every file of the page folder (relative path -> bytes), after checking the model and the runtime."""
    located = open_model_folder(id_or_dir)
    folder, hashes, config = located.folder, located.hashes, located.config
    if config["x_dim"] == 0:
        raise WebError(f"{folder} is a posterior sampler (no input x); the page shows image models")
    sessions = {name: GraphSession(folder, name, config, "cpu", 1, hashes) for name in PAGE_GRAPHS}
    ort_files = runtime_files()
    manifest = {
        "id": config.get("id") or folder.name,
        "x_dim": config["x_dim"],
        "latent_dim": config["latent_dim"],
        "noise_dim": sessions["encoder"].noise_dim,
        "image_shape": list(image_shape_of(config)),
        "metrics": card_metrics(folder, hashes),
        "graphs": {name: f"model/{name}.onnx" for name in PAGE_GRAPHS},
        "streams": {"prior": stream.PRIOR, "encoder_noise": stream.ENCODER_NOISE},
        "onnxruntime_web": ORT_WEB_VERSION,
    }
    static = resources.files("avb_zoo.web") / "static"
    files = {name: (static / name).read_bytes() for name in PAGE_FILES}
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files[f"model/{CONFIG_FILE}"] = _read(folder, CONFIG_FILE, hashes)
    for name in PAGE_GRAPHS:
        # the bytes shipped are the bytes checked: the export's verified graph, no random op
        files[f"model/{name}.onnx"] = verified_graph(folder, name, hashes)
    files.update({f"ort/{name}": data for name, data in ort_files.items()})
    return files


def _check_target(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
        raise OutputError(f"--out {out} is a folder that export-web did not write; choose an empty or new folder")


def export_web(id_or_dir: str | Path, out: str | Path) -> Path:
    """Write the page folder to ``out`` (a fresh folder, or one export-web wrote before, which is replaced)."""
    out = Path(out)
    _check_target(out)
    files = page_files(id_or_dir)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create {out.parent}: {err.strerror or err}") from None
    stage = out.parent / f".{out.name}.{secrets.token_hex(6)}.tmp"
    old = out.parent / f".{out.name}.{secrets.token_hex(6)}.old"
    try:
        for rel, data in files.items():
            atomic_write_bytes(stage / rel, data)
        if out.is_dir():
            os.replace(out, old)
        os.replace(stage, out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        if old.is_dir() and not out.exists():
            os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return out
