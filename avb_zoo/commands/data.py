"""``avb-zoo data``: fetch MNIST (md5-checked) and turn its digits into the files ``encode`` and
``reconstruct`` take, so the README's examples need no hand-written Python."""

from __future__ import annotations

import click

from avb_zoo.commands.support import example, print_json

DATASETS = click.Choice(["mnist"])


@example("avb-zoo data digits --split test -n 16 --out digits.npy")
@click.group()
def data() -> None:
    """Get data sets and example inputs: download MNIST, write test digits as .npy or images."""


@data.command()
@click.argument("dataset", type=DATASETS)
@click.option("--dir", "folder", type=click.Path(file_okay=False), default=None, help="Where to put the files.")
@click.option("--mirror", "mirrors", multiple=True, help="Base URL to fetch from instead of the canonical mirrors.")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True, help="Seconds per request.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def download(dataset: str, folder: str | None, mirrors: tuple[str, ...], timeout: float, as_json: bool) -> None:
    """Download DATASET's files into --dir (default: $AVB_ZOO_DATA, else ~/.cache/avb-zoo/mnist).

    Every file is md5-checked against the published MNIST; files already there and intact are kept, and a
    file that fails the check is not kept. $AVB_ZOO_MNIST_MIRRORS (comma-separated) replaces the mirrors.
    """
    from avb_zoo.data.mnist import MNIST_MD5, download_mnist

    root = download_mnist(folder, mirrors=list(mirrors) or None, timeout=timeout)
    if as_json:
        print_json({"dataset": dataset, "files": sorted(MNIST_MD5), "dir": str(root), "md5_checked": True})
        return
    click.echo(f"{dataset}: {len(MNIST_MD5)} files in {root}, md5-checked")


@data.command()
@click.option("--split", type=click.Choice(["train", "valid", "test"]), default="test", show_default=True)
@click.option("-n", "count", type=click.IntRange(min=1), default=16, show_default=True, help="Number of digits.")
@click.option("--start", type=click.IntRange(min=0), default=0, show_default=True, help="Index of the first digit.")
@click.option(
    "--out", required=True, help="A .npy file (uint8 N x 28 x 28), or a folder that gets one image per digit."
)
@click.option("--format", "fmt", default="png", show_default=True, help="Image extension when --out is a folder.")
@click.option("--labels", "labels_out", default=None, help="Also write the digits' labels (.npy).")
@click.option("--dir", "folder", type=click.Path(), default=None, help="MNIST folder (default: $AVB_ZOO_DATA).")
@click.option(
    "--bundled",
    is_flag=True,
    help="Take them from the test split's first 64 digits, which ship with the package (no download).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def digits(
    split: str,
    count: int,
    start: int,
    out: str,
    fmt: str,
    labels_out: str | None,
    folder: str | None,
    bundled: bool,
    as_json: bool,
) -> None:
    """Write N MNIST digits of a split (from --start) as the input of encode and reconstruct.

    Example: avb-zoo data digits --split test -n 16 --out digits.npy
    """
    from pathlib import Path

    from avb_zoo.data.mnist import mnist_digits
    from avb_zoo.runtime.images import check_image_path, image_bytes
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all

    out_path = Path(out)
    as_array = out_path.suffix.lower() == ".npy"
    if not as_array:
        _, image_format = check_image_path(out_path / f"digit.{fmt.lstrip('.')}", "--format")
    labels_path = check_suffix(labels_out, ".npy", "--labels") if labels_out else None
    if bundled:
        from avb_zoo.data.mnist import bundled_digits
        from avb_zoo.errors import DataError

        if split != "test" or folder is not None:
            raise DataError("--bundled digits are the test split's first 64; it takes neither --split nor --dir")
        images, labels = bundled_digits(count, start)
    else:
        images, labels = mnist_digits(folder, split, count, start)
    files: dict[Path, bytes] = {}
    if as_array:
        files[out_path] = npy_bytes(images)
    else:
        for k, image in enumerate(images):
            files[out_path / f"{split}-{start + k:05d}.{fmt.lstrip('.')}"] = image_bytes(image, image_format)
    if labels_path is not None:
        files[labels_path] = npy_bytes(labels.astype("int64"))
    write_all(files)
    if as_json:
        print_json({"split": split, "start": start, "count": count, "files": sorted(str(p) for p in files)})
        return
    where = out_path if as_array else f"{out_path}/ ({count} files)"
    click.echo(f"wrote {split} digits {start}..{start + count - 1} to {where}")
