"""Which files a model folder holds and which of them may leave it.

A push uploads only the files the zoo defines (``PUSHED``), and only when each is a regular file whose real
path lies inside the folder: a symlink to a key or a credentials file, or a stray file beside the model, must
never reach the Hub. Torch-free.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from avb_zoo.errors import CheckpointError
from avb_zoo.modelfile.layout import GRAPHS, INT8_REPORT, INT8_SAMPLER, ONNX_DIR, REPORT, graph_file

REQUIRED = ("config.json", "model.safetensors")
GENERATED = ("README.md", "samples.png")  # the model card and its sample grid, generated at push
OPTIONAL = ("adversary.safetensors", "metrics.json", "training.json")
GRAPH_FILES = tuple(graph_file(name) for name in GRAPHS)
TEST_DATA_ROOT = f"{ONNX_DIR}/test_data"


def test_data_dir(graph: str) -> str:
    """Where a graph's fixed inputs and expected outputs live (the ONNX model zoo's test_data_set layout)."""
    return f"{TEST_DATA_ROOT}/{graph}/test_data_set_0"


TEST_DATA_FILES = tuple(
    f"{test_data_dir(graph)}/{kind}_{i}.pb"
    for graph, (inputs, outputs) in GRAPHS.items()
    for kind, names in (("input", inputs), ("output", outputs))
    for i in range(len(names))
)
# Every file a push may upload (README.md is the model card push generates itself, never a file of the folder).
PUSHED = (*REQUIRED, *OPTIONAL, *GRAPH_FILES, REPORT, *TEST_DATA_FILES, INT8_SAMPLER, INT8_REPORT)


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
    if not Path(os.path.realpath(path)).is_relative_to(root):
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
