"""The test examples an evaluation runs on, and a description of them for the protocol record.

MNIST: ``n`` images of the test split (t10k) drawn at random without replacement, the first ``n`` of a
permutation of all its images keyed by (seed, "test-subset") (the file is ordered, so its first images
would not be a fair sample; a smaller ``n`` gives a subset of a larger one's images). Each image keeps its
index in the file as its example index, and is binarised dynamically (as the authors do at test time)
with a generator keyed by (seed, example index, "binarize"): an example's bits depend on its index alone.
Toy: the four points. Eight Schools: one empty row (the data live in the model's log joint).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.errors import DataError, EvaluationError, shown
from avb_zoo.evaluation.protocol import binarization_key

SUBSET_STREAM = "test-subset"
DEFAULT_N_TEST = {"mnist": 2048, "toy": 4, "eight-schools": 1}  # 2048: the paper's AIS test set size


@dataclass
class TestSet:
    """Examples [N, x_dim] float32 on the CPU, their indices (the randomness keys) and a description."""

    x: torch.Tensor
    indices: list[int]
    description: dict[str, Any]


def data_name(config: dict[str, Any]) -> str:
    return str((config.get("data") or {}).get("name", ""))


def binarize_keyed(images: torch.Tensor, seed: int, indices: list[int]) -> torch.Tensor:
    """Each row binarised with its own generator keyed by (seed, index, "binarize")."""
    from avb_zoo.data.mnist import binarize

    rows = [binarize(images[i : i + 1], keyed_generator(seed, idx, "binarize")) for i, idx in enumerate(indices)]
    return torch.cat(rows) if rows else torch.zeros(0, images.shape[1])


def check_examples(x: torch.Tensor, x_dim: int) -> torch.Tensor:
    """float32 [N, x_dim] with every value finite and in [0, 1]; else DataError naming the problem."""
    from avb_zoo.data.mnist import check_images

    x = check_images(x, name="test data", dim=x_dim)
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    return x.float()


def load_test_set(
    config: dict[str, Any],
    n_test: int | None,
    seed: int,
    data_dir: str | Path | None = None,
    data: torch.Tensor | None = None,
) -> TestSet:
    """``n_test`` test examples of the model's data set (``data`` [N, x_dim] replaces it: its first n_test).

    MNIST images are a random subset keyed by the seed (:func:`random_subset`); the toy's points and user
    data are taken in order.
    """
    name = data_name(config)
    x_dim = int(config["x_dim"])
    if n_test is not None and (not isinstance(n_test, int) or isinstance(n_test, bool) or n_test < 1):
        raise EvaluationError(f"n_test must be a positive integer, got {shown(n_test)}")
    if data is not None:
        x = check_examples(torch.as_tensor(data), x_dim)
        n = x.shape[0] if n_test is None else n_test
        if n > x.shape[0]:
            raise EvaluationError(f"n_test = {n} but the data have {x.shape[0]} examples")
        desc = {"name": "user data", "examples": n, "indices": f"0..{n - 1}", "binarization": "none (as given)"}
        return TestSet(x[:n], list(range(n)), desc)
    if name not in DEFAULT_N_TEST:
        raise DataError(f"no test data known for data set {shown(name)}; pass the examples explicitly")
    n = DEFAULT_N_TEST[name] if n_test is None else n_test
    if name == "toy":
        from avb_zoo.data.toy import TOY_POINTS

        if n > TOY_POINTS.shape[0]:
            raise EvaluationError(f"n_test = {n} but the toy data have {TOY_POINTS.shape[0]} points")
        desc = {"name": "toy", "split": "the four points", "examples": n, "binarization": "none (binary data)"}
        return TestSet(TOY_POINTS[:n].clone(), list(range(n)), desc)
    if name == "eight-schools":
        if n != 1:
            raise EvaluationError(f"n_test = {n}: Eight Schools has a single data set (n_test 1)")
        desc = {"name": "eight-schools", "split": "the eight schools (posteriordb)", "examples": 1}
        return TestSet(torch.zeros(1, 0), [0], desc)
    from avb_zoo.data.mnist import load_mnist, resolve_data_dir

    root = resolve_data_dir(data_dir)
    images = load_mnist(root, "test")
    if n > images.shape[0]:
        raise EvaluationError(f"n_test = {n} but the MNIST test split in {root} has {images.shape[0]} images")
    indices = random_subset(images.shape[0], n, seed)
    desc = {
        "name": "mnist",
        "split": "test (t10k)",
        "examples": n,
        "indices": (
            f"{n} of the split's {images.shape[0]} images at random without replacement: the first {n} of a "
            f"permutation keyed by (seed {seed}, '{SUBSET_STREAM}'); an image's example index is its place in the file"
        ),
        "binarization": "dynamic: (uniform <= pixel / 255), uniforms keyed by (seed, example index, 'binarize')",
        "binarization_key": binarization_key(),
    }
    return TestSet(check_examples(binarize_keyed(images[indices], seed, indices), x_dim), indices, desc)


def random_subset(total: int, n: int, seed: int) -> list[int]:
    """Indices of ``n`` of ``total`` examples without replacement: the first n of a permutation keyed by
    (seed, "test-subset"), so the subset depends on the seed alone and grows with n."""
    return torch.randperm(total, generator=keyed_generator(seed, SUBSET_STREAM))[:n].tolist()
