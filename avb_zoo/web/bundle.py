"""``avb-zoo export-web``: one model's browser page as a static folder, written all or nothing.

The folder holds the page (index.html, style.css, app.js, stream.js, png.js), ``model/page.json`` (what the
page needs to know: sizes, noise size, image layout, the input size limit, card metrics in words, the streams'
numbers, the URLs of the graphs and the wasm), the model's config.json and its sampler and encoder graphs, and
the pinned onnxruntime-web files in ``ort/``. Every graph is checked against config.json here (the runtime's
own checks), so a folder that exports is one the page can run. Every URL but the page's own and page.json's
carries its file's hash (``?v=``), so a browser may keep those files for good (``avb-zoo serve`` says so).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from avb_zoo.cards.card import metric_errors, metric_values
from avb_zoo.errors import GraphError, OutputError, WebError
from avb_zoo.modelfile.layout import CONFIG_FILE, image_shape_of
from avb_zoo.runtime import stream
from avb_zoo.runtime.graph_checks import read_checked, verified_graph
from avb_zoo.runtime.limits import MAX_IMAGE_PIXELS
from avb_zoo.runtime.locate import ModelFolder, open_model_folder
from avb_zoo.runtime.session import GraphSession
from avb_zoo.util.fileio import atomic_write_bytes
from avb_zoo.web.serve import content_hash
from avb_zoo.web.vendor import ORT_WEB_VERSION, runtime_files

PAGE_FILES = ("index.html", "style.css", "app.js", "stream.js", "png.js")
# the files index.html names, each given its ?v= hash on export
VERSIONED_IN_PAGE = ("style.css", "stream.js", "png.js", "ort/ort.wasm.min.js", "app.js")
WASM = "ort/ort-wasm-simd-threaded.wasm"
WASM_MODULE = "ort/ort-wasm-simd-threaded.mjs"
MANIFEST = "model/page.json"  # also marks a folder as one export-web wrote (and may replace)
PAGE_GRAPHS = ("sampler", "encoder")


MAX_PAGE_FILE = 1 << 20  # config.json and metrics.json: a few kB


def _read(folder: Path, rel: str, hashes: Mapping[str, str] | None) -> bytes:
    """A file of the model folder, bounded; for a catalogued model only one whose sha256 was checked."""
    return read_checked(folder, rel, MAX_PAGE_FILE, hashes)


def _metrics_json(folder: Path, hashes: Mapping[str, str] | None) -> dict[str, Any]:
    """The folder's metrics.json as a dict; empty when there is none or it cannot be read."""
    if not (folder / "metrics.json").is_file() or (hashes is not None and "metrics.json" not in hashes):
        return {}
    try:
        metrics = json.loads(_read(folder, "metrics.json", hashes))
    except (OSError, ValueError, RecursionError, GraphError):
        return {}
    return metrics if isinstance(metrics, dict) else {}


def card_metrics(folder: Path, hashes: Mapping[str, str] | None = None) -> dict[str, float]:
    """The numeric top-level fields of the folder's metrics.json (the card's figures); none without one."""
    metrics = _metrics_json(folder, hashes)
    return {k: v for k, v in sorted(metrics.items()) if isinstance(v, int | float) and not isinstance(v, bool)}


# (what a reader calls it, how it was obtained) for the metrics the card knows; all in nats
METRIC_WORDS = {
    "log_likelihood": ("log p(x)", "AIS"),
    "exact_log_likelihood": ("log p(x)", "exact, by quadrature"),
    "elbo": ("ELBO", "a lower bound, analytic KL"),
    "iw_bound": ("importance-weighted bound", "a lower bound"),
    "elbo_estimate": ("ELBO estimate", "the adversary's: an estimate, not a bound"),
    "kl": ("KL(q(z|x) || p(z))", "analytic"),
    "kl_estimate": ("KL(q(z|x) || p(z)) estimate", "the adversary's: an estimate, not a bound"),
    "reconstruction_error": ("reconstruction error -log p(x|z)", ""),
}


def metric_lines(metrics: Mapping[str, Any]) -> list[str]:
    """The card's metrics in words, one line each: name, value, unit, how it was obtained and its standard
    errors (the card's two kinds), e.g. "log p(x) = -87.25 nats (AIS, 1000 steps x 5 chains; Monte Carlo
    s.e. 0.015, spread s.e. 0.69 over 1,024 test images)"."""
    values, errors = metric_values(dict(metrics)), metric_errors(dict(metrics))
    protocol = metrics.get("protocol") if isinstance(metrics.get("protocol"), dict) else {}
    n_test = protocol.get("n_test")
    ais = protocol.get("ais") if isinstance(protocol.get("ais"), dict) else {}
    lines = []
    for name in [*(n for n in METRIC_WORDS if n in values), *sorted(n for n in values if n not in METRIC_WORDS)]:
        label, how = METRIC_WORDS.get(name, (name, ""))
        if name == "log_likelihood" and isinstance(ais.get("steps"), int) and isinstance(ais.get("chains"), int):
            how = f"AIS, {ais['steps']} steps x {ais['chains']} chains"
        err = errors.get(name, {})
        spread = f"spread s.e. {err['_spread_se']:.2g}" if "_spread_se" in err else ""
        if spread and isinstance(n_test, int) and not isinstance(n_test, bool):
            spread += f" over {n_test:,} test images"
        ses = ", ".join(t for t in (f"Monte Carlo s.e. {err['_mc_se']:.2g}" if "_mc_se" in err else "", spread) if t)
        detail = "; ".join(t for t in (how, ses) if t)
        unit = " nats" if name in METRIC_WORDS else ""
        lines.append(f"{label} = {values[name]:.4g}{unit}" + (f" ({detail})" if detail else ""))
    return lines


METHOD_NAMES = {"avb": "AVB", "avb-ac": "AVB with adaptive contrast", "vae": "VAE"}
DATA_NAMES = {"mnist": "MNIST digits", "toy": "the four-point toy data"}


def page_title(config: Mapping[str, Any]) -> str:
    """What the model is, for the page's title: e.g. "AVB with adaptive contrast on MNIST digits"."""
    method = str(config.get("method", "")) or "a model"
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    name = str(data.get("name", ""))
    where = f" on {DATA_NAMES.get(name, name)}" if name else ""
    return f"{METHOD_NAMES.get(method, method)}{where}"


def versioned(files: Mapping[str, bytes], rel: str) -> str:
    """``rel`` with its content hash: the URL a browser may keep for good."""
    return f"{rel}?v={content_hash(files[rel])}"


def _versioned_page(html: bytes, files: Mapping[str, bytes]) -> bytes:
    text = html.decode()
    for rel in VERSIONED_IN_PAGE:
        for attr in ("src", "href"):
            text = text.replace(f'{attr}="{rel}"', f'{attr}="{versioned(files, rel)}"')
        if versioned(files, rel) not in text:
            raise WebError(f"the page's index.html does not name {rel}; the package is damaged")
    return text.encode()


def page_files(id_or_dir: str | Path | ModelFolder) -> dict[str, bytes]:
    """Every file of the page folder (relative path -> bytes), after checking the model and the runtime."""
    located = open_model_folder(id_or_dir)
    folder, hashes, config = located.folder, located.hashes, located.config
    if config["x_dim"] == 0:
        raise WebError(f"{folder} is a posterior sampler (no input x); the page shows image models")
    sessions = {name: GraphSession(folder, name, config, "cpu", 1, hashes) for name in PAGE_GRAPHS}
    ort_files = runtime_files()
    static = resources.files("avb_zoo.web") / "static"
    files = {name: (static / name).read_bytes() for name in PAGE_FILES}
    files[f"model/{CONFIG_FILE}"] = _read(folder, CONFIG_FILE, hashes)
    for name in PAGE_GRAPHS:
        # the bytes shipped are the bytes checked: the export's verified graph, no random op
        files[f"model/{name}.onnx"] = verified_graph(folder, name, hashes)
    files.update({f"ort/{name}": data for name, data in ort_files.items()})
    files["index.html"] = _versioned_page(files["index.html"], files)
    metrics = _metrics_json(folder, hashes)
    manifest = {
        "id": config.get("id") or folder.name,
        "title": page_title(config),
        "x_dim": config["x_dim"],
        "latent_dim": config["latent_dim"],
        "noise_dim": sessions["encoder"].noise_dim,
        "image_shape": list(image_shape_of(config)),
        "max_image_pixels": MAX_IMAGE_PIXELS,
        "metrics": card_metrics(folder, hashes),
        "metric_lines": metric_lines(metrics),
        "graphs": {name: versioned(files, f"model/{name}.onnx") for name in PAGE_GRAPHS},
        "runtime": {"wasm": versioned(files, WASM), "mjs": versioned(files, WASM_MODULE)},
        "streams": {"prior": stream.PRIOR, "encoder_noise": stream.ENCODER_NOISE},
        "onnxruntime_web": ORT_WEB_VERSION,
    }
    files[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
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
