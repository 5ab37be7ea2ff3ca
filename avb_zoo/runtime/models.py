"""Encode and sample with onnxruntime alone: numpy in, numpy out, noise drawn here with a seed.

Noise is drawn from the portable stream of ``avb_zoo.runtime.stream`` (splitmix64 words, polar normals), one
stream per kind of draw read in example order, so the result for a given seed does not depend on
``batch_size``, and the browser page (``avb-zoo export-web``) draws the same numbers for the same seed.
``seed=None`` draws fresh noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from avb_zoo.errors import InputError, shown
from avb_zoo.modelfile.layout import META_PREFIX, image_shape_of
from avb_zoo.runtime.inputs import as_model_input
from avb_zoo.runtime.limits import check_values
from avb_zoo.runtime.locate import ModelFolder, open_model_folder
from avb_zoo.runtime.session import GraphSession
from avb_zoo.runtime.stream import (
    BINARIZE,
    ENCODER_NOISE,
    POSTERIOR_NOISE,
    PRIOR,
    NormalStream,
    UniformStream,
    fresh_seed,
)

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
        self,
        model: str | Path | ModelFolder,
        providers: str | Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        located = open_model_folder(model)  # a ModelFolder passes through: named and read once by the caller
        self.source = str(located.folder if isinstance(model, ModelFolder) else model)
        self.folder, self._hashes = located.folder, located.hashes
        self._providers, self._threads = providers, threads
        self.config = located.config
        self.x_dim: int = self.config["x_dim"]
        self.latent_dim: int = self.config["latent_dim"]
        self.image_shape = image_shape_of(self.config)
        self.graph = self._open(self.GRAPH)
        self.providers: list[str] = self.graph.providers
        self.noise_dim: int = self.graph.noise_dim  # every graph records it (encoder and posterior graphs take eps)

    def __repr__(self) -> str:
        """The model, what it was asked as, its folder, the graphs it has and where they run."""
        graphs = sorted(p.stem for p in (self.folder / "onnx").glob("*.onnx"))
        return (
            f"{type(self).__name__}(model={self.config.get('id')!r}, source={self.source!r}, "
            f"folder={str(self.folder)!r}, graphs={graphs}, latent_dim={self.latent_dim}, providers={self.providers})"
        )

    def _open(self, name: str) -> GraphSession:
        return GraphSession(self.folder, name, self.config, self._providers, self._threads, self._hashes)


class Encoder(_Model):
    """q(z|x) from ``onnx/encoder.onnx`` (and its mean and variance from ``onnx/moments.onnx`` where exported)."""

    GRAPH = "encoder"

    def __init__(
        self, model: str | Path | ModelFolder, providers: str | Sequence[str] | None = None, threads: int | None = None
    ) -> None:
        super().__init__(model, providers, threads)
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
        rng = NormalStream(fresh_seed() if seed is None else seed, ENCODER_NOISE)
        rows = np.repeat(np.arange(len(x)), samples)
        out = np.empty((len(rows), self.latent_dim), dtype=np.float32)
        for start in range(0, len(rows), batch_size):
            idx = rows[start : start + batch_size]
            eps = rng.take(len(idx) * self.noise_dim).reshape(len(idx), self.noise_dim)
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
        """z ~ N(0, I), float32 [n, d]: row-major from the prior stream of ``seed`` (row i is the same for any n)."""
        n = _count(n, "n")
        check_values((n, self.latent_dim), "the prior draws z", "draw fewer samples at a time")
        rng = NormalStream(fresh_seed() if seed is None else seed, PRIOR)
        return rng.take(n * self.latent_dim).reshape(n, self.latent_dim)

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
        probs = np.asarray(probs)
        rng = UniformStream(fresh_seed() if seed is None else seed, BINARIZE)
        return (rng.take(probs.size).reshape(probs.shape) < probs).astype(np.float32)


class PosteriorSampler(_Model):
    """Draws of a posterior sampler (a model with no input x, e.g. Eight Schools) from ``onnx/posterior.onnx``.

    ``draw(n, seed)`` feeds eps ~ N(0, I) drawn here as one stream, so a seed gives the same draws at any
    ``batch_size``; each row is one draw of z (for Eight Schools: mu, tau, eta_1..eta_8).
    """

    GRAPH = "posterior"

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """The name of each coordinate of z where the export recorded them (e.g. mu, tau, eta_1..eta_8)."""
        names = self.graph.metadata.get(META_PREFIX + "parameter_names", "")
        return tuple(names.split(",")) if names else ()

    def noise(self, n: int, seed: int | None = None) -> np.ndarray:
        """eps ~ N(0, I), float32 [n, noise_dim]: the noise ``draw`` feeds for this seed."""
        n = _count(n, "n")
        check_values((n, self.noise_dim), "the posterior noise eps", "draw fewer samples at a time")
        rng = NormalStream(fresh_seed() if seed is None else seed, POSTERIOR_NOISE)
        return rng.take(n * self.noise_dim).reshape(n, self.noise_dim)

    def draw(self, n: int, seed: int | None = None, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """``n`` draws of z, float32 [n, latent_dim]."""
        check_values((_count(n, "n"), self.latent_dim), "the posterior draws", "draw fewer samples at a time")
        eps, step = self.noise(n, seed), _count(batch_size, "batch_size")
        return np.concatenate([self.graph.run({"eps": eps[i : i + step]})[0] for i in range(0, len(eps), step)])


def open_sampler(
    model: str | Path | ModelFolder, providers: str | Sequence[str] | None = None, threads: int | None = None
) -> Sampler | PosteriorSampler:
    """The sampler a model has: a PosteriorSampler for a model with no input x (x_dim 0), else a Sampler."""
    located = open_model_folder(model)
    cls = PosteriorSampler if located.config["x_dim"] == 0 else Sampler
    sampler = cls(located, providers, threads)
    if not isinstance(model, ModelFolder):
        sampler.source = str(model)  # what the caller named, as a Sampler(model) would record it
    return sampler
