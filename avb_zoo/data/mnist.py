"""MNIST: locating, downloading (md5-verified), loading the authors' split, and dynamic binarisation.

Split (the authors' TF ``read_data_sets(validation_size=5000)``): train = training images [5000:] (55,000),
valid = training images [:5000], test = t10k (10,000). Images are returned as uint8 [N, 784] on the CPU;
:func:`binarize` turns a batch into {0,1} float32 with a caller-supplied generator (keyed randomness).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from http.client import HTTPException
from pathlib import Path

import numpy as np
import torch

from avb_zoo.data.idx import read_idx
from avb_zoo.errors import ChecksumError, DataError, shown
from avb_zoo.util.fileio import open_temp_beside

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

# md5 of the published files (the sums every standard loader pins)
MNIST_MD5: dict[str, str] = {
    TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
    TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
    TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
}

# the mirrors torchvision uses, in its order
MIRRORS: tuple[str, ...] = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

ENV_VAR = "AVB_ZOO_DATA"
MIRROR_ENV_VAR = "AVB_ZOO_MNIST_MIRRORS"  # comma-separated base URLs tried instead of MIRRORS (a local mirror)
SPLITS = ("train", "valid", "test")
IMAGE_SIZE = 28
FULL_TRAIN_SIZE = 60_000
VALID_SIZE = 5_000
_CHUNK = 1 << 16
_USER_AGENT = "avb-zoo/0.1 (MNIST downloader)"


def resolve_data_dir(path: str | Path | None = None) -> Path:
    """The MNIST folder: the argument, else $AVB_ZOO_DATA, else $XDG_CACHE_HOME/avb-zoo/mnist (~/.cache)."""
    if path is not None and str(path) != "":
        return Path(path).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "avb-zoo" / "mnist"


def file_md5(path: str | Path) -> str:
    """Hex md5 of a file, read in chunks."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_md5sums(path: str | Path) -> dict[str, str]:
    """Parse an ``md5sum``-style file (``<hex>  <name>`` per line) into {name: md5}."""
    sums: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest.lower()
    return sums


def verify_mnist(root: str | Path | None = None, files: Mapping[str, str] = MNIST_MD5) -> list[str]:
    """md5-check the files of ``files`` that are present in ``root``; returns the names checked.

    On demand only (hashing ~11 MB): loading always checks IDX headers and shapes, which catches truncation.
    """
    root = resolve_data_dir(root)
    checked = []
    for name, expected in files.items():
        path = root / name
        if not path.is_file():
            continue
        actual = file_md5(path)
        if actual != expected.lower():
            raise ChecksumError(f"{path}: md5 {actual} differs from the expected {expected}")
        checked.append(name)
    return checked


def default_mirrors() -> tuple[str, ...]:
    """$AVB_ZOO_MNIST_MIRRORS (comma-separated base URLs) when set, else the canonical MIRRORS."""
    env = [m.strip() for m in os.environ.get(MIRROR_ENV_VAR, "").split(",") if m.strip()]
    return tuple(env) or MIRRORS


def _url(mirror: str, name: str) -> str:
    return mirror if mirror.endswith(name) else mirror.rstrip("/") + "/" + name


def _fetch_verified(url: str, dest: Path, expected_md5: str, timeout: float) -> str:
    """Stream ``url`` to a temp file beside ``dest``; move it into place only if the md5 matches.

    Returns the md5 of what was received. The temp file is removed on any failure, so nothing is half-written.
    """
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    fd, tmp = open_temp_beside(dest, ".part")
    try:
        h = hashlib.md5()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                h.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual == expected_md5.lower():
            os.replace(tmp, dest)
        return actual
    finally:
        tmp.unlink(missing_ok=True)


def ways_to_give_mnist(root: Path) -> str:
    """Every way to give the MNIST files, in one sentence: what a failed download or a missing file ends with."""
    return (
        f"Give MNIST one of these ways: `avb-zoo data download mnist --dir {shlex.quote(str(root))}` online; "
        "`--mirror URL` for another server or a folder of the four .gz files (file:///path/); "
        f"{ENV_VAR}=FOLDER (or --data-dir, --dir) for files you have; offline, a clone of the repository "
        f"carries a 550-image subset: {ENV_VAR}=tests/data/mnist-subset"
    )


def download_mnist(
    root: str | Path | None = None,
    mirrors: Sequence[str] | None = None,
    timeout: float = 30.0,
    files: Mapping[str, str] = MNIST_MD5,
) -> Path:
    """Fetch the files of ``files`` that are missing or fail their md5, trying each mirror in turn.

    A mirror that fails (network error or wrong bytes) is skipped for the next one. If every mirror served
    wrong bytes for a file -> ChecksumError; if none could be reached -> DataError. Returns the folder.
    """
    root = resolve_data_dir(root)
    mirrors = tuple(default_mirrors() if mirrors is None else mirrors)
    made = [p for p in (root, *root.parents) if not p.exists()]  # removed again if the download fails
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(f"{root}: cannot create the MNIST folder ({exc}); set {ENV_VAR} to a writable folder") from None
    try:
        _download_files(root, mirrors, timeout, files)
    except BaseException:
        for folder in made:  # deepest first: a failed download leaves no empty folders behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
    return root


def _download_files(root: Path, mirrors: Sequence[str], timeout: float, files: Mapping[str, str]) -> None:
    for name, expected in files.items():
        dest = root / name
        if dest.is_file() and file_md5(dest) == expected.lower():
            continue
        failures: list[str] = []
        bad_md5: list[str] = []
        for mirror in mirrors:
            url = _url(mirror, name)
            try:
                actual = _fetch_verified(url, dest, expected, timeout)
            except (OSError, HTTPException, ValueError) as exc:
                failures.append(f"{url} ({exc})")
                continue
            if actual == expected.lower():
                break
            bad_md5.append(f"{url} (md5 {actual})")
        else:
            if bad_md5:
                raise ChecksumError(
                    f"{dest}: downloaded bytes fail the md5 check (expected {expected}): "
                    + "; ".join(bad_md5 + failures)
                    + "; nothing was kept"
                )
            raise DataError(
                f"{dest}: could not download {name} from any mirror: "
                + ("; ".join(failures) or "no mirrors given")
                + ". "
                + ways_to_give_mnist(root)
            )


def _split_sizes(n_train_file: int) -> tuple[int, int]:
    """(valid, train) sizes for a training file of ``n_train_file`` images; see :func:`load_mnist`."""
    n_valid = VALID_SIZE if n_train_file > VALID_SIZE else n_train_file // 12
    return n_valid, n_train_file - n_valid


def _split_files(split: str, kind: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown MNIST split {shown(split)}; expected one of {', '.join(SPLITS)}")
    if split == "test":
        return TEST_IMAGES if kind == "images" else TEST_LABELS
    return TRAIN_IMAGES if kind == "images" else TRAIN_LABELS


def _ensure_present(root: Path, names: Iterable[str], download: bool) -> None:
    """Raise DataError naming the folder and the missing files (after downloading them if asked)."""
    missing = [n for n in names if not (root / n).is_file()]
    if missing and download:
        download_mnist(root, files={n: MNIST_MD5[n] for n in missing})
        missing = [n for n in missing if not (root / n).is_file()]
    if missing:
        where = "does not exist" if not root.is_dir() else "lacks"
        raise DataError(f"MNIST folder {root} {where}: missing {', '.join(missing)}. {ways_to_give_mnist(root)}")


IMAGES_MAGIC = 0x00000803  # uint8, three dimensions [N, 28, 28]
LABELS_MAGIC = 0x00000801  # uint8, one dimension [N]


def _read_images(path: Path) -> np.ndarray:
    images = read_idx(path, IMAGES_MAGIC, "an MNIST images file (uint8 [N, 28, 28])")
    if images.dtype != np.uint8 or images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"{path}: expected uint8 images [N, 28, 28], got {images.dtype} {list(images.shape)}")
    return images.reshape(images.shape[0], IMAGE_SIZE * IMAGE_SIZE)


def _read_labels(path: Path) -> np.ndarray:
    labels = read_idx(path, LABELS_MAGIC, "an MNIST labels file (uint8 [N])")
    if labels.dtype != np.uint8 or labels.ndim != 1:
        raise DataError(f"{path}: expected uint8 labels [N], got {labels.dtype} {list(labels.shape)}")
    if labels.size and labels.max() > 9:
        raise DataError(f"{path}: label {int(labels.max())} out of range 0..9")
    return labels


def _take_split(array: np.ndarray, split: str) -> np.ndarray:
    if split == "test":
        return array
    n_valid, _ = _split_sizes(array.shape[0])
    return array[:n_valid] if split == "valid" else array[n_valid:]


def load_mnist(
    root: str | Path | None = None, split: str = "train", *, download: bool = False, verify: bool = False
) -> torch.Tensor:
    """Images of one split as a CPU uint8 tensor [N, 784] (row-major 28x28, 0 = background).

    train = training file [5000:], valid = training file [:5000], test = the t10k file (55,000/5,000/10,000
    on the full data). Small-data rule, for subsets: the first 5000 training images are the valid split only
    when the training file has more than 5000 images; otherwise the valid split is its first n // 12 images
    (the same 1/12 share as 5000/60000) and train is the rest.
    ``root`` as in :func:`resolve_data_dir`; ``download=True`` fetches missing files first; ``verify=True``
    also md5-checks the file against the published MNIST (headers and sizes are always checked).
    """
    root = resolve_data_dir(root)
    name = _split_files(split, "images")
    _ensure_present(root, [name], download)
    if verify:
        verify_mnist(root, {name: MNIST_MD5[name]})
    images = _take_split(_read_images(root / name), split)
    return torch.from_numpy(np.ascontiguousarray(images))


def load_mnist_labels(
    root: str | Path | None = None, split: str = "train", *, download: bool = False, verify: bool = False
) -> torch.Tensor:
    """Labels (0..9) of one split as a CPU int64 tensor [N], aligned with :func:`load_mnist`."""
    root = resolve_data_dir(root)
    name = _split_files(split, "labels")
    _ensure_present(root, [name], download)
    if verify:
        verify_mnist(root, {name: MNIST_MD5[name]})
    labels = _take_split(_read_labels(root / name), split)
    return torch.from_numpy(labels.astype(np.int64))


def mnist_digits(root: str | Path | None, split: str, count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(uint8 images [count, 28, 28], labels [count]) of one split from index ``start``: test digits for
    ``encode`` and ``reconstruct`` without hand-written code. A request beyond the split is refused."""
    _check_digit_request(count, start)
    root = resolve_data_dir(root)
    names = [_split_files(split, "images"), _split_files(split, "labels")]
    _ensure_present(root, names, download=False)
    images = _take_split(_read_images(root / names[0]), split)
    if start + count > len(images):
        raise DataError(
            f"the {split} split in {root} holds {len(images)} images; -n {count} from --start {start} "
            f"would need {start + count}"
        )
    labels = _take_split(_read_labels(root / names[1]), split)
    if len(labels) != len(images):
        raise DataError(f"{root}: the {split} split has {len(images)} images but {len(labels)} labels")
    return _digit_window(images, labels, count, start)


def _check_digit_request(count: int, start: int) -> None:
    if count < 1 or start < 0:
        raise DataError(f"ask for at least one digit from an index of 0 or more (got -n {count}, --start {start})")


def _digit_window(images: np.ndarray, labels: np.ndarray, count: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Digits ``start`` .. ``start + count - 1`` as uint8 [count, 28, 28] and their labels."""
    window = slice(start, start + count)
    return images[window].reshape(count, IMAGE_SIZE, IMAGE_SIZE), labels[window]


BUNDLED_DIR = Path(__file__).resolve().parent / "bundled"
BUNDLED_IMAGES = "t10k-first-64-images-idx3-ubyte.gz"  # the test split's first 64 digits, shipped in the package
BUNDLED_LABELS = "t10k-first-64-labels-idx1-ubyte.gz"
BUNDLED_COUNT = 64


def bundled_digits(count: int, start: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) from the first 64 test digits that ship with the package: encode and reconstruct
    on real digits with no download (the same values as ``mnist_digits(root, "test", count, start)``)."""
    _check_digit_request(count, start)
    if start + count > BUNDLED_COUNT:
        raise DataError(
            f"the package ships the test split's first {BUNDLED_COUNT} digits; -n {count} from --start {start} "
            f"would need {start + count} (download MNIST for more: avb-zoo data download mnist)"
        )
    images = _read_images(BUNDLED_DIR / BUNDLED_IMAGES)
    labels = _read_labels(BUNDLED_DIR / BUNDLED_LABELS)
    return _digit_window(images, labels, count, start)


def binarize(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dynamic binarisation as the authors do it: ``(uniform(shape) <= image / 255)`` as float32.

    uint8 input is divided by 255; floating input is taken as already in [0, 1]. The uniforms are drawn on
    the CPU with ``generator`` (so a keyed generator gives the same bits on any device); the result lives
    on ``images.device``. As in the authors' code, ``<=`` lets a 0 pixel turn on with probability 2**-24.
    """
    if images.dtype == torch.uint8:
        probs = images.to(torch.float32) / 255.0
    elif images.is_floating_point():
        probs = images.to(torch.float32)
    else:
        raise DataError(f"binarize expects uint8 or float images, got {images.dtype}")
    u = torch.rand(images.shape, generator=generator, dtype=torch.float32, device="cpu")
    return (u.to(images.device) <= probs).to(torch.float32)


def check_images(x: torch.Tensor | np.ndarray, *, name: str = "images", dim: int | None = None) -> torch.Tensor:
    """Reject user data that would silently poison training: non-finite or outside [0, 1] (floats).

    uint8 data is accepted as is (pixel values, divided by 255 later). ``dim`` checks the last dimension
    (784 for MNIST-shaped models). Returns the data as a tensor.
    """
    t = torch.as_tensor(x)
    if dim is not None and (t.ndim < 1 or t.shape[-1] != dim):
        raise DataError(f"{name}: expected shape [N, {dim}], got {list(t.shape)}")
    if t.dtype == torch.uint8:
        return t
    if not (t.is_floating_point() or t.dtype == torch.bool):
        raise DataError(f"{name}: expected float values in [0, 1] or uint8 pixels, got {t.dtype}")
    if t.dtype == torch.bool or t.numel() == 0:
        return t
    finite = torch.isfinite(t)
    if not bool(finite.all()):
        n_nan = int(torch.isnan(t).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise DataError(f"{name}: {n_nan} NaN and {n_inf} infinite values; clean the data first")
    lo, hi = float(t.min()), float(t.max())
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{name}: values must lie in [0, 1], found min {lo:g} and max {hi:g}; scale pixels to [0, 1]")
    return t
