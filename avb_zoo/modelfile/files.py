"""Which files of a model folder may leave it, and which cache entries may be deleted.

A push uploads only the files the zoo defines (``PUSHED``), and only when each is a regular file whose real
path lies inside the folder: a symlink to a key or a credentials file, or a stray file beside the model, must
never reach the Hub. A failed checksum deletes only what lies inside the cache, never through a link that
leads out of it. Torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from avb_zoo.errors import CheckpointError

REQUIRED = ("config.json", "model.safetensors")
GENERATED = ("README.md", "samples.png")  # the model card and its sample grid, generated at push
OPTIONAL = ("adversary.safetensors", "metrics.json", "training.json")
ONNX_DIR = "onnx"
# The graphs and report of runtime.conventions, named here so that the hub needs neither numpy nor onnxruntime.
GRAPH_FILES = (
    "onnx/encoder.onnx",
    "onnx/moments.onnx",
    "onnx/decoder.onnx",
    "onnx/sampler.onnx",
    "onnx/posterior.onnx",
)
REPORT = "onnx/verification.json"
# graph -> (inputs, outputs), as runtime.conventions.GRAPHS counts them: fixes the test data files a graph has.
_GRAPH_IO = {"encoder": (2, 1), "moments": (1, 2), "decoder": (1, 1), "sampler": (1, 1), "posterior": (1, 1)}


TEST_DATA_ROOT = f"{ONNX_DIR}/test_data"


def test_data_dir(graph: str) -> str:
    """Where a graph's fixed inputs and expected outputs live (the ONNX model zoo's test_data_set layout)."""
    return f"{TEST_DATA_ROOT}/{graph}/test_data_set_0"


TEST_DATA_FILES = tuple(
    f"{test_data_dir(graph)}/{kind}_{i}.pb"
    for graph, (n_in, n_out) in _GRAPH_IO.items()
    for kind, n in (("input", n_in), ("output", n_out))
    for i in range(n)
)
# Every file a push may upload (README.md is the model card push generates itself, never a file of the folder).
INT8_FILES = ("onnx/sampler-int8.onnx", "onnx/sampler-int8.json")  # optional, with its measured error
PUSHED = (*REQUIRED, *OPTIONAL, *GRAPH_FILES, REPORT, *TEST_DATA_FILES, *INT8_FILES)


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def _refusal(folder: Path, root: Path, rel: str) -> str | None:
    """Why ``folder/rel`` may not be uploaded (None: it may); ``root`` is the folder's real path."""
    path = folder / rel
    try:
        info = os.lstat(path)
    except OSError:
        return None if not os.path.lexists(path) else "unreadable"
    if stat.S_ISLNK(info.st_mode):
        return "a symbolic link"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if not _inside(Path(os.path.realpath(path)), root):
        return "its real path lies outside the folder"
    return None


def select_push_files(folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """(files to upload by path in the repo, files left out with the reason); refuses a folder without a model."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"{folder} is not a model folder")
    root = Path(os.path.realpath(folder))
    files: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for rel in PUSHED:
        path = folder / rel
        if not os.path.lexists(path):
            continue
        why = _refusal(folder, root, rel)
        if why is None:
            files[rel] = path
        else:
            skipped[rel] = why
    onnx = folder / ONNX_DIR
    extra = [*folder.iterdir(), *(onnx.iterdir() if onnx.is_dir() and not onnx.is_symlink() else [])]
    for path in sorted(extra):
        rel = path.relative_to(folder).as_posix()
        if rel in files or rel in skipped or (rel in (ONNX_DIR, TEST_DATA_ROOT) and not path.is_symlink()):
            continue
        if rel in GENERATED and path.is_file() and not path.is_symlink():
            continue  # push makes these again from the files above (a shipped folder keeps a copy)
        skipped[rel] = "a symbolic link" if path.is_symlink() else "not a file the zoo defines"
    missing = [rel for rel in REQUIRED if rel not in files]
    if missing:
        why = "; ".join(f"{rel} is {skipped[rel]}" for rel in missing if rel in skipped)
        raise CheckpointError(
            f"{folder} is not a model folder: it lacks {missing}"
            + (f" ({why}; push uploads only regular files inside the folder)" if why else "")
        )
    return files, skipped


def remove_cached(path: Path, cache: Path) -> None:
    """Delete a cache entry (the snapshot link and the blob it points to), only where each lies inside ``cache``.

    A link whose folder or target resolves outside the cache is left alone: deleting through it would delete a
    file the cache does not own.
    """
    root = Path(os.path.realpath(cache))
    if not _inside(Path(os.path.realpath(path.parent)), root):
        return
    target = Path(os.path.realpath(path))
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    if target != path and _inside(target, root) and target.is_file() and not target.is_symlink():
        target.unlink(missing_ok=True)
