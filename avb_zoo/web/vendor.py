"""onnxruntime-web at a pinned version, fetched once with npm into a local folder and copied into every page.

The page must load nothing from a CDN, and megabytes of wasm do not belong in git: ``avb-zoo web-runtime``
runs ``npm pack onnxruntime-web@ORT_WEB_VERSION``, checks the tarball against npm's published sha512, and
keeps the three files the wasm backend needs in ``runtime_dir()``. ``export-web`` copies them from there after
checking each against the sha256 pinned below, so a page always runs exactly these bytes.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from avb_zoo.errors import WebError
from avb_zoo.util.fileio import atomic_write_bytes

ORT_WEB_VERSION = "1.30.0"
# npm's dist.integrity of onnxruntime-web-1.30.0.tgz (`npm view onnxruntime-web@1.30.0 dist.integrity`)
ORT_WEB_INTEGRITY = "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ=="
# the wasm-only build: a classic script defining `ort`, its module loader and the SIMD wasm binary (which runs
# single-threaded, or multi-threaded when the page is cross-origin isolated)
ORT_WEB_FILES: dict[str, str] = {
    "ort.wasm.min.js": "faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81",
    "ort-wasm-simd-threaded.mjs": "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
ENV_DIR = "AVB_ZOO_WEB_RUNTIME"
FETCH_HINT = "run `avb-zoo web-runtime` once (it needs npm and the npm registry)"


def runtime_dir() -> Path:
    """Where the vendored files live: $AVB_ZOO_WEB_RUNTIME, else the user cache (~/.cache/avb-zoo/...)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "avb-zoo" / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def runtime_files(folder: Path | None = None) -> dict[str, bytes]:
    """The pinned files' bytes, each checked against its sha256; WebError naming the fix when one is missing."""
    folder = runtime_dir() if folder is None else folder
    files = {}
    for name, digest in ORT_WEB_FILES.items():
        path = folder / name
        if not path.is_file() or path.is_symlink():
            raise WebError(f"onnxruntime-web {ORT_WEB_VERSION} is not prepared in {folder} (no {name}); {FETCH_HINT}")
        data = path.read_bytes()
        if _sha256(data) != digest:
            raise WebError(f"{path} is not the pinned onnxruntime-web {ORT_WEB_VERSION} file; {FETCH_HINT} again")
        files[name] = data
    return files


def _check_integrity(tarball: bytes) -> None:
    algo, _, expected = ORT_WEB_INTEGRITY.partition("-")
    actual = base64.b64encode(hashlib.new(algo, tarball).digest()).decode()
    if actual != expected:
        raise WebError(f"npm gave an onnxruntime-web {ORT_WEB_VERSION} tarball whose {algo} differs from npm's record")


def unpack(tarball: bytes) -> dict[str, bytes]:
    """The pinned files out of the npm tarball (only those members, read as bytes: nothing else is extracted)."""
    _check_integrity(tarball)
    files = {}
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        for name in ORT_WEB_FILES:
            try:
                member = tar.getmember(f"package/dist/{name}")
            except KeyError:
                raise WebError(f"the onnxruntime-web {ORT_WEB_VERSION} tarball has no dist/{name}") from None
            handle = tar.extractfile(member) if member.isfile() else None
            if handle is None:
                raise WebError(f"dist/{name} in the onnxruntime-web tarball is not a regular file")
            files[name] = handle.read()
    return files


def npm_pack() -> bytes:
    """The onnxruntime-web tarball through npm (its registry and cache settings are the user's own)."""
    npm = shutil.which("npm")
    if npm is None:
        raise WebError(f"npm is not installed; it is needed once to fetch onnxruntime-web {ORT_WEB_VERSION}")
    with tempfile.TemporaryDirectory(prefix="avb-zoo-npm-") as tmp:
        cmd = [npm, "pack", f"onnxruntime-web@{ORT_WEB_VERSION}", "--pack-destination", tmp, "--silent"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        tarball = Path(tmp) / f"onnxruntime-web-{ORT_WEB_VERSION}.tgz"
        if done.returncode != 0 or not tarball.is_file():
            lines = (done.stderr or done.stdout).strip().splitlines()
            reason = lines[-1] if lines else f"exit status {done.returncode}"
            raise WebError(f"npm could not fetch onnxruntime-web {ORT_WEB_VERSION}: {reason}")
        return tarball.read_bytes()


def prepare(folder: Path | None = None, tarball: bytes | None = None) -> Path:
    """Fetch (unless ``tarball`` is given), check and keep the pinned files in ``folder``; idempotent."""
    folder = runtime_dir() if folder is None else folder
    try:
        runtime_files(folder)
        return folder  # already there and intact
    except WebError:
        pass
    files = unpack(npm_pack() if tarball is None else tarball)
    for name, data in files.items():
        if _sha256(data) != ORT_WEB_FILES[name]:
            raise WebError(f"dist/{name} of onnxruntime-web {ORT_WEB_VERSION} differs from the pinned sha256")
    for name, data in files.items():
        atomic_write_bytes(folder / name, data)
    return folder
