"""Encode and sample with onnxruntime alone: numpy in, numpy out, noise drawn here with a seed.

Noise is drawn from ``numpy.random.default_rng(seed)`` as one stream in example order, so the result for a
given seed does not depend on ``batch_size``. ``seed=None`` draws fresh noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avb_zoo.errors import InputError, shown
from avb_zoo.runtime.conventions import image_shape_of
from avb_zoo.runtime.inputs import as_model_input
from avb_zoo.runtime.limits import check_values
from avb_zoo.runtime.locate import read_model_config, resolve_model
from avb_zoo.runtime.session import GraphSession

DEFAULT_BATCH = 1024


def _count(value: int, what: str) -> int:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        raise InputError(f"{what} must be a positive integer, got {shown(value)}")
    return int(value)


def _float_input(array: Any, width: int, what: str) -> np.ndarray:
    """A float32 [B, width] array of finite values (latent codes or noise given by the caller)."""
    array = np.asarray(array)
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
        raise InputError(f"{what} has shape {list(array.shape)}; expected N x {width} with N >= 1")
    if array.dtype.kind != "f":
        raise InputError(f"{what} has dtype {array.dtype}; expected float32")
    array = np.ascontiguousarray(array, dtype=np.float32)
    if not np.isfinite(array).all():
        raise InputError(f"{what} holds NaN or infinite values")
    return array


class _Model:
    """A model folder's config.json, image layout and main graph (``GRAPH``), on the chosen providers.

    ``providers``: None or "auto" (CUDA when available, then CPU), "cpu", "cuda" or onnxruntime names;
    ``threads``: CPU threads per call (default: the CPUs this process may use; see runtime.session).
    """

    GRAPH: str

    def __init__(
        self, model: str | Path, providers: str | Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        self.folder, self._hashes = resolve_model(model)
        self._providers, self._threads = providers, threads
        self.config = read_model_config(self.folder)
        self.x_dim: int = self.config["x_dim"]
        self.latent_dim: int = self.config["latent_dim"]
        self.image_shape = image_shape_of(self.config)
        self.graph = self._open(self.GRAPH)
        self.providers: list[str] = self.graph.providers

    def _open(self, name: str) -> GraphSession:
        return GraphSession(self.folder, name, self.config, self._providers, self._threads, self._hashes)


class Encoder(_Model):
    """q(z|x) from ``onnx/encoder.onnx`` (and its mean and variance from ``onnx/moments.onnx`` where exported)."""

    GRAPH = "encoder"

    def __init__(
        self, model: str | Path, providers: str | Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        super().__init__(model, providers, threads)
        self.noise_dim = self.graph.noise_dim
        self._moments: GraphSession | None = None

    def run(self, x: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """The graph itself: z [B, d] for images ``x`` (any accepted form) and noise ``eps`` [B, noise_dim]."""
        x = as_model_input(x, self.image_shape, "x")
        eps = _float_input(eps, self.noise_dim, "eps")
        if len(eps) != len(x):
            raise InputError(f"x has {len(x)} images but eps has {len(eps)} rows")
        return self.graph.run({"x": x, "eps": eps})[0]

    def encode(
        self, x: np.ndarray, samples: int = 1, seed: int | None = None, batch_size: int = DEFAULT_BATCH
    ) -> np.ndarray:
        """z ~ q(z|x): [N, d] for ``samples=1``, else [N, samples, d]."""
        x = as_model_input(x, self.image_shape, "x")
        samples = _count(samples, "samples")
        batch_size = _count(batch_size, "batch_size")
        check_values((len(x), samples, self.latent_dim), "the codes z", "use fewer --samples or fewer images")
        rng = np.random.default_rng(seed)
        rows = np.repeat(np.arange(len(x)), samples)
        out = np.empty((len(rows), self.latent_dim), dtype=np.float32)
        for start in range(0, len(rows), batch_size):
            idx = rows[start : start + batch_size]
            eps = rng.standard_normal((len(idx), self.noise_dim), dtype=np.float32)
            out[start : start + len(idx)] = self.graph.run({"x": x[idx], "eps": eps})[0]
        return out if samples == 1 else out.reshape(len(x), samples, self.latent_dim)

    def moments(self, x: np.ndarray, batch_size: int = DEFAULT_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of q(z|x), each [N, d] (AC and Gaussian encoders; see the export's notes)."""
        if self._moments is None:
            self._moments = self._open("moments")
        x = as_model_input(x, self.image_shape, "x")
        step = _count(batch_size, "batch_size")
        check_values((2, len(x), self.latent_dim), "the moments", "encode fewer images at a time")
        parts = [self._moments.run({"x": x[i : i + step]}) for i in range(0, len(x), step)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


class Sampler(_Model):
    """p(x|z) as pixel probabilities from ``onnx/sampler.onnx``; ``sample`` draws z from the prior N(0, I)."""

    GRAPH = "sampler"

    def prior(self, n: int, seed: int | None = None) -> np.ndarray:
        """z ~ N(0, I), float32 [n, d]."""
        n = _count(n, "n")
        check_values((n, self.latent_dim), "the prior draws z", "draw fewer samples at a time")
        return np.random.default_rng(seed).standard_normal((n, self.latent_dim), dtype=np.float32)

    def probabilities(self, z: np.ndarray, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Pixel probabilities sigmoid(logits(z)), float32 [N, x_dim]."""
        z = _float_input(z, self.latent_dim, "z")
        step = _count(batch_size, "batch_size")
        check_values((len(z), self.x_dim), "the pixel probabilities", "decode fewer codes at a time")
        return np.concatenate([self.graph.run({"z": z[i : i + step]})[0] for i in range(0, len(z), step)])

    def sample(self, n: int, seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Pixel probabilities of ``n`` prior samples, float32 [n, x_dim]."""
        check_values((_count(n, "n"), self.x_dim), "the samples", "draw fewer samples at a time")
        return self.probabilities(self.prior(n, seed), batch_size)

    def binarize(self, probs: np.ndarray, seed: int | None = None) -> np.ndarray:
        """Binary pixels x ~ Bernoulli(probs), drawn here (the graphs hold no random ops)."""
        rng = np.random.default_rng(None if seed is None else [seed, 1])
        return (rng.random(probs.shape, dtype=np.float32) < probs).astype(np.float32)
