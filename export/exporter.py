"""``avb-zoo export``: write a model's ONNX graphs and a verification report, or nothing.

Every graph is exported and checked against its torch module in memory first; files are written only when
all graphs pass. A failed check raises ExportError and removes the graphs and report of the output folder,
so no folder claims a verified export that it does not hold.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any

import torch

import avb_zoo
from avb_zoo.compute.threads import check_threads, choose_threads, governed, mean_product_flops
from avb_zoo.errors import ExportError, shown
from avb_zoo.hub.resolve import resolve
from avb_zoo.modelfile.config_file import read_model_config
from avb_zoo.modelfile.files import TEST_DATA_FILES, TEST_DATA_ROOT
from avb_zoo.modelfile.layout import (
    CONFIG_FILE,
    GRAPHS,
    ONNX_DIR,
    REPORT_FILE,
    architecture_fingerprint,
    graph_file,
)
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import WEIGHTS_FILE, build_from_folder
from avb_zoo.util.fileio import atomic_write_bytes, atomic_write_json, is_folder

from .graphs import GraphSpec, graph_specs
from .onnx_graphs import DEFAULT_OPSET, stamp, to_onnx
from .test_data import test_data_files
from .verify import DEFAULT_ATOL, DEFAULT_BATCHES, check_parity

VERSION_SUFFIX = re.compile(r"-v(\d+)$")


def _versions() -> dict[str, str]:
    import onnx
    import onnxscript

    from avb_zoo.runtime.ort import onnxruntime

    return {
        "avb_zoo": avb_zoo.__version__,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxscript": onnxscript.__version__,
        "onnxruntime": onnxruntime.__version__,
    }


def _metadata(model: AVBModel, spec: GraphSpec, model_id: str, version: int | None, opset: int) -> dict[str, str]:
    shape = model.config.get("image_shape")
    return {
        "graph": spec.name,
        "id": model_id,
        "model_version": "" if version is None else str(version),
        "package_version": avb_zoo.__version__,
        "method": model.method,
        "x_dim": str(model.x_dim),
        "latent_dim": str(model.latent_dim),
        "noise_dim": str(model.noise_dim),
        "image_shape": "" if shape is None else ",".join(map(str, shape)),
        "architecture_sha256": architecture_fingerprint(model.config),
        "opset": str(opset),
        "inputs": ",".join(spec.inputs),
        "outputs": ",".join(spec.outputs),
        **spec.notes,
    }


def _remove_outputs(onnx_dir: Path) -> None:
    """Remove every graph and the report, so a failed export leaves no folder claiming a verified one."""
    for name in GRAPHS:
        (onnx_dir.parent / graph_file(name)).unlink(missing_ok=True)
    (onnx_dir / REPORT_FILE).unlink(missing_ok=True)
    for rel in TEST_DATA_FILES:
        (onnx_dir.parent / rel).unlink(missing_ok=True)


def _check_onnx_dir(out: Path) -> None:
    """``out/onnx`` must be a real folder inside ``out``: an export never writes (or deletes) through a link."""
    onnx_dir = out / ONNX_DIR
    if onnx_dir.is_symlink():
        raise ExportError(f"{onnx_dir} is a symbolic link; export writes only inside the model folder: remove it")
    tests = out / TEST_DATA_ROOT
    if tests.is_symlink() or any((tests / g).is_symlink() for g in GRAPHS):
        raise ExportError(f"{tests} (or a folder in it) is a symbolic link; export writes only inside the model folder")
    if onnx_dir.exists() and not onnx_dir.is_dir():
        raise ExportError(f"{onnx_dir} exists and is not a folder; remove it or choose another --out")
    if onnx_dir.exists() and not Path(os.path.realpath(onnx_dir)).is_relative_to(os.path.realpath(out)):
        raise ExportError(f"{onnx_dir} lies outside {out}; export writes only inside the model folder")


def _config_missing(out: Path, model: AVBModel) -> bool:
    """Whether ``out`` lacks a config.json; one it has must describe this model's architecture."""
    if not (out / CONFIG_FILE).exists():
        return True
    if architecture_fingerprint(read_model_config(out)) != architecture_fingerprint(model.config):
        raise ExportError(f"{out} holds another model's {CONFIG_FILE}; choose another --out")
    return False


def export_model(
    model: AVBModel,
    out: str | Path,
    *,
    model_id: str,
    opset: int = DEFAULT_OPSET,
    batch_sizes: tuple[int, ...] = DEFAULT_BATCHES,
    atol: float = DEFAULT_ATOL,
    seed: int | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Export every graph ``model`` has to ``out/onnx/``, verified; returns the report written beside them.

    ``seed`` keys the random test inputs (None: fresh ones, the seed used is in the report). ``threads`` fixes
    the threads of torch and of the parity check's onnxruntime session (None: chosen, see
    :mod:`avb_zoo.compute.threads`).
    """
    check_threads(threads)
    out = Path(out)
    onnx_dir = out / ONNX_DIR
    seed = secrets.randbits(62) if seed is None else seed
    match = VERSION_SUFFIX.search(model_id)
    version = int(match.group(1)) if match else None
    specs, skipped = graph_specs(model)
    if not specs:
        raise ExportError(f"{model_id} has no exportable graph: " + "; ".join(f"{k}: {v}" for k, v in skipped.items()))
    _check_onnx_dir(out)
    write_config = _config_missing(out, model)
    generator = torch.Generator().manual_seed(seed)
    files: dict[Path, bytes] = {}
    graphs: dict[str, Any] = {}
    try:
        choice = choose_threads(threads, mean_product_flops(model, max(batch_sizes)))
        with governed(choice) as governor:
            for spec in specs:
                proto = to_onnx(spec, opset)
                meta = _metadata(model, spec, model_id, version, opset)
                stamp(
                    proto,
                    meta,
                    f"avb-zoo {model_id}: {spec.name} graph ({', '.join(spec.inputs)} -> {', '.join(spec.outputs)})",
                    version,
                )
                data = proto.SerializeToString()
                checks = check_parity(data, spec, batch_sizes, generator, threads=governor.choice.threads)
                worst = max(v for c in checks for v in c["max_error"].values())
                if not worst <= atol:
                    bad = next(c for c in checks if max(c["max_error"].values()) == worst)
                    raise ExportError(
                        f"{spec.name} graph differs from its torch module: max error {worst:.3g} "
                        f"(|onnxruntime - torch| / max(1, |torch|)) at batch {bad['batch']} exceeds {atol:g}; "
                        "no graphs were kept"
                    )
                path = out / graph_file(spec.name)
                files[path] = data
                tests = test_data_files(spec)
                files.update({out / rel: blob for rel, blob in tests.items()})
                graphs[spec.name] = {
                    "file": graph_file(spec.name),
                    "sha256": hashlib.sha256(data).hexdigest(),
                    "bytes": len(data),
                    "inputs": {name: ["batch", spec.sizes[name]] for name in spec.inputs},
                    "outputs": list(spec.outputs),
                    "max_abs_diff": max(v for c in checks for v in c["max_abs_diff"].values()),
                    "max_error": worst,
                    "test_data": {rel: hashlib.sha256(blob).hexdigest() for rel, blob in sorted(tests.items())},
                    "checks": checks,
                    "metadata": meta,
                }
        report = {
            "model_id": model_id,
            "model_version": version,
            "opset": opset,
            "atol": atol,
            "batch_sizes": list(batch_sizes),
            "seed": seed,
            "provider": "CPUExecutionProvider",
            "versions": _versions(),
            "graphs": graphs,
            "skipped": skipped,
            "passed": True,
        }
        for path, data in files.items():
            atomic_write_bytes(path, data)
        for name in skipped:
            (out / graph_file(name)).unlink(missing_ok=True)  # a stale graph from an earlier export
            for rel in TEST_DATA_FILES:
                if rel.startswith(f"{TEST_DATA_ROOT}/{name}/"):
                    (out / rel).unlink(missing_ok=True)
        if write_config:
            atomic_write_json(out / CONFIG_FILE, model.config)
        atomic_write_json(onnx_dir / REPORT_FILE, report)
    except BaseException:
        _remove_outputs(onnx_dir)
        if write_config:
            (out / CONFIG_FILE).unlink(missing_ok=True)
        raise
    return report


def _recorded_id(folder: Path) -> str | None:
    """The recipe id that training wrote into model.safetensors' metadata (reads the header only)."""
    from safetensors import safe_open

    try:
        with safe_open(folder / WEIGHTS_FILE, "pt") as fh:
            return (fh.metadata() or {}).get("recipe_id")
    except Exception:  # a missing or corrupt file: load reports it properly
        return None


def export_folder(
    id_or_dir: str | Path, out: str | Path | None = None, model_id: str | None = None, **kwargs: Any
) -> tuple[Path, dict[str, Any]]:
    """Load the model ``id_or_dir`` names and export it to ``out`` (default: its own folder); (folder, report)."""
    if out is None and not is_folder(id_or_dir):
        raise ExportError(f"give --out to export {shown(id_or_dir)}: only a local model folder is exported in place")
    pulled = resolve(id_or_dir)
    folder = pulled.folder
    model = build_from_folder(AVBModel, folder, hashes=pulled.hashes, with_adversary=False)
    model_id = model_id or _recorded_id(folder) or str(model.config.get("id") or folder.resolve().name)
    target = folder if out is None else Path(out)
    return target, export_model(model, target, model_id=model_id, **kwargs)
