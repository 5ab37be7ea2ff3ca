"""Regenerate tests/data/mnist-subset from a full MNIST folder: first 600 training and 500 test examples.

Usage: python tests/data/make_mnist_subset.py /path/to/full/mnist [out_dir]

The files are written with write_idx (gzip without timestamp), so rerunning gives byte-identical files and
the same MD5SUMS. With 600 training images, load_mnist's small-data rule makes valid = the first 50.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout, when avb_zoo is not installed

from avb_zoo.data.idx import read_idx, write_idx  # noqa: E402
from avb_zoo.data.mnist import (  # noqa: E402
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    file_md5,
    verify_mnist,
)
from avb_zoo.util.fileio import atomic_write_bytes  # noqa: E402

N_TRAIN = 600
N_TEST = 500


def make_subset(full: Path, out: Path) -> dict[str, str]:
    """Write the subset files and MD5SUMS into ``out``; returns {name: md5}."""
    verify_mnist(full)  # the source must be the published MNIST
    out.mkdir(parents=True, exist_ok=True)
    counts = {TRAIN_IMAGES: N_TRAIN, TRAIN_LABELS: N_TRAIN, TEST_IMAGES: N_TEST, TEST_LABELS: N_TEST}
    sums = {}
    for name, n in counts.items():
        write_idx(out / name, read_idx(full / name)[:n])
        sums[name] = file_md5(out / name)
    atomic_write_bytes(out / "MD5SUMS", "".join(f"{md5}  {name}\n" for name, md5 in sorted(sums.items())).encode())
    return sums


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3):
        print(__doc__, file=sys.stderr)
        return 2
    out = Path(argv[2]) if len(argv) == 3 else Path(__file__).resolve().parent / "mnist-subset"
    for name, md5 in make_subset(Path(argv[1]), out).items():
        print(f"{md5}  {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
