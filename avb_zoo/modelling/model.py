"""The model: encoder, decoder and (for AVB) adversary, built from a validated configuration.

A configuration is plain JSON data (it is written to ``config.json`` beside the weights)::

    {"format_version": 1, "method": "avb-ac", "latent_dim": 32, "x_dim": 784, "image_shape": [1, 28, 28],
     "encoder": {"name": "noise-basis", ...kwargs}, "decoder": {"name": "bernoulli", ...},
     "adversary": {"name": "inner-product", ...}, "data": {"name": "mnist"}}

``x_dim``, ``latent_dim`` and ``image_shape`` are passed to every component that takes them. Every field is
checked before anything is allocated: a hostile or mistyped file fails with a message naming the field.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.errors import ConfigError, InputError, shown
from avb_zoo.modelfile.config_file import suggestion
from avb_zoo.modelfile.model_config import FORMAT_VERSION, METHODS, _check_value, validate_config  # noqa: F401
from avb_zoo.modelling.networks.adversaries import ADVERSARIES
from avb_zoo.modelling.networks.decoders import DECODERS, BernoulliDecoder
from avb_zoo.modelling.networks.encoders import ENCODERS, GaussianEncoder, NoiseBasisEncoder
from avb_zoo.modelling.pretrained import PretrainedMixin

MAX_PARAMETERS = 200_000_000  # larger than any recipe by far; guards against configs that would exhaust memory
COMMON_FIELDS = ("x_dim", "latent_dim", "image_shape")
BASIS_MOMENT_DRAWS = 65536  # noise draws behind a model's estimate of its basis-vector moments
BASIS_MOMENT_KEY = "ac-basis-moments"  # the key of the generator they are drawn from
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def model_input(x: Any, x_dim: int, image_shape: Sequence[int] | None, source: str = "x") -> torch.Tensor:
    """``x`` checked as the runtime checks its arrays, as a float tensor [N, x_dim] in [0, 1].

    Takes a tensor or anything numpy reads: [N, x_dim], [N, H, W] (one channel) or [N, C, H, W]; uint8 0-255
    (divided by 255), booleans, or finite floats in [0, 1]. Anything else is one InputError naming the problem,
    never torch's own TypeError, and never a silent 0..255 float that would give codes hundreds of times too big.
    """
    if not isinstance(x, torch.Tensor):
        import numpy as np

        try:
            array = np.asarray(x)
        except (ValueError, TypeError) as err:
            raise InputError(f"{source} is not a rectangular array: {err}") from None
        if array.dtype.hasobject or not (array.dtype in (np.uint8, np.bool_) or array.dtype.kind == "f"):
            raise InputError(f"{source} has dtype {array.dtype}; expected float values in [0, 1] or uint8 0-255")
        x = torch.from_numpy(np.ascontiguousarray(array))
    allowed = [(x_dim,)]
    if image_shape is not None:
        c, h, w = image_shape
        allowed += [(c, h, w)] + ([(h, w)] if c == 1 else [])
    if x.ndim < 2 or tuple(x.shape[1:]) not in allowed:
        shapes = " or ".join("N x " + " x ".join(map(str, s)) for s in allowed)
        raise InputError(f"{source} has shape {list(x.shape)}; expected {shapes}")
    x = x.reshape(x.shape[0], x_dim)
    if x.dtype == torch.uint8:
        return x.float() / 255.0
    if x.dtype == torch.bool:
        return x.float()
    if x.dtype not in FLOAT_DTYPES:
        raise InputError(f"{source} has dtype {x.dtype}; expected float values in [0, 1] or uint8 0-255")
    if x.numel():
        bad = ~torch.isfinite(x)
        if bool(bad.any()):
            row = int(bad.nonzero()[0, 0])
            raise InputError(f"{source} holds {int(bad.sum())} NaN or infinite value(s) (first in image {row})")
        low, high = float(x.min()), float(x.max())
        if low < 0.0 or high > 1.0:
            hint = " (0-255 pixels: pass uint8, or divide by 255)" if high > 1.0 and high <= 255.0 else ""
            raise InputError(f"{source} has values in [{low:g}, {high:g}]; float images must lie in [0, 1]{hint}")
    return x


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value fits a constructor annotation (int, float, bool, str, Sequence[...], optional)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_fits(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint in (int, float, bool, str):
        if isinstance(value, bool) != (hint is bool):
            return False
        return isinstance(value, int | float) if hint is float else isinstance(value, hint)
    if typing.get_origin(hint) in (Sequence, list, tuple):
        args = typing.get_args(hint)
        item = args[0] if len(args) == 1 else Any
        return isinstance(value, list | tuple) and (item is Any or all(_fits(v, item) for v in value))
    return True  # an annotation this check does not know is left to the constructor


def _component_kwargs(role: str, spec: Any, registry: Mapping[str, type], common: dict[str, Any]) -> tuple[type, dict]:
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{role} must be a table with a 'name' field, got {type(spec).__name__}")
    name = spec.get("name")
    if name not in registry:
        raise ConfigError(f"{role}.name = {shown(name)} is not a known architecture; choose one of {sorted(registry)}")
    cls = registry[name]
    params = inspect.signature(cls.__init__).parameters
    hints = typing.get_type_hints(cls.__init__)
    kwargs = {k: v for k, v in common.items() if k in params}
    for key, value in spec.items():
        if key == "name":
            continue
        if key not in params or key == "self":
            allowed = sorted(p for p in params if p != "self")
            raise ConfigError(
                f"{role}.{shown(key)[1:-1]} is not a setting of {shown(name)}{suggestion(str(key), allowed)}; "
                f"its settings are {allowed}"
            )
        _check_value(f"{role}.{key}", value)
        if key in hints and not _fits(value, hints[key]):
            raise ConfigError(
                f"{role}.{key} = {shown(value)} has the wrong type; {shown(name)} expects {params[key].annotation}"
            )
        kwargs[key] = list(value) if isinstance(value, tuple) else value
    missing = [
        p.name
        for p in params.values()
        if p.name != "self" and p.default is inspect.Parameter.empty and p.name not in kwargs
    ]
    if missing:
        raise ConfigError(f"{role} ({shown(name)}) needs {missing}")
    return cls, kwargs


def _construct(role: str, cls: type, kwargs: dict) -> nn.Module:
    """Build once on the meta device to count parameters, then for real; errors name the component."""
    try:
        with torch.device("meta"):
            probe = cls(**kwargs)
        n = sum(p.numel() for p in probe.parameters())
        if n > MAX_PARAMETERS:
            raise ConfigError(f"{role} would have {n:,} parameters (limit {MAX_PARAMETERS:,}); check its sizes")
        return cls(**kwargs)
    except ConfigError:
        raise
    except (ValueError, TypeError, RuntimeError) as err:
        raise ConfigError(f"{role} cannot be built from its settings: {err}") from None


class AVBModel(PretrainedMixin, nn.Module):
    """Encoder + decoder (+ adversary): the object every other part of avb-zoo works with.

    ``encode`` draws its own noise (or takes ``eps``), ``decode_logits`` gives Bernoulli logits,
    ``encoder_moments`` gives the mean and variance of q(z|x) where the encoder has them.
    ``from_pretrained`` / ``save_pretrained`` / ``push_to_hub`` follow huggingface_hub's conventions.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        cfg = validate_config(config)
        self.config = cfg
        self.source: str | None = None  # the folder or id it was loaded from (None: built here)
        common = {"x_dim": cfg["x_dim"], "latent_dim": cfg["latent_dim"]}
        if cfg.get("image_shape") is not None:
            common["image_shape"] = cfg["image_shape"]
        enc_cls, enc_kw = _component_kwargs("encoder", cfg.get("encoder"), ENCODERS, common)
        dec_cls, dec_kw = _component_kwargs("decoder", cfg.get("decoder"), DECODERS, common)
        self.encoder = _construct("encoder", enc_cls, enc_kw)
        self.decoder = _construct("decoder", dec_cls, dec_kw)
        self.adversary: nn.Module | None = None
        if cfg["adversary"] is not None:
            adv_cls, adv_kw = _component_kwargs("adversary", cfg["adversary"], ADVERSARIES, common)
            self.adversary = _construct("adversary", adv_cls, adv_kw)
        if self.method == "avb-ac" and not self.encoder.has_moments:
            raise ConfigError(f"method 'avb-ac' needs an encoder with moments; {enc_cls.__name__} has none")
        if self.method == "vae" and not isinstance(self.encoder, GaussianEncoder):
            raise ConfigError("method 'vae' needs the 'gaussian' encoder")

    @property
    def method(self) -> str:
        return self.config["method"]

    @property
    def adaptive_contrast(self) -> bool:
        return self.method == "avb-ac"

    @property
    def latent_dim(self) -> int:
        return self.config["latent_dim"]

    @property
    def x_dim(self) -> int:
        return self.config["x_dim"]

    @property
    def noise_dim(self) -> int:
        return self.encoder.noise_dim

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.parameters()).dtype

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Encoder noise eps ~ N(0, I) [n, noise_dim], drawn on the CPU (so results do not depend on the device)."""
        return torch.randn(n, self.noise_dim, generator=generator).to(self.device, self.dtype)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z ~ p(z) = N(0, I) [n, latent_dim]."""
        return torch.randn(n, self.latent_dim, generator=generator).to(self.device, self.dtype)

    def checked_input(self, x: Any) -> torch.Tensor:
        """``x`` as the model takes it ([N, x_dim] floats in [0, 1] on its device and dtype), checked the way the
        runtime checks its arrays (see :func:`model_input`)."""
        if self.x_dim == 0 and isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == 0:
            return x.to(self.device, self.dtype)  # an unconditional sampler (Eight Schools): x is empty
        images = self.config.get("image_shape") if isinstance(self.decoder, BernoulliDecoder) else None
        if not isinstance(self.decoder, BernoulliDecoder) and isinstance(x, torch.Tensor):
            return x.to(self.device, self.dtype)
        return model_input(x, self.x_dim, images).to(self.device, self.dtype)

    @torch.no_grad()
    def encode(self, x: Any, generator: torch.Generator | None = None, eps: torch.Tensor | None = None) -> torch.Tensor:
        """One sample z ~ q(z|x) per row of x, detached (for people: training builds its own graph).

        ``x``: a tensor or array, checked as the runtime's Encoder checks it (shape, dtype, range).
        """
        x = self.checked_input(x)
        if eps is None:
            eps = self.sample_noise(x.shape[0], generator)
        return self.encoder(x, eps)

    @torch.no_grad()
    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Bernoulli logits of p(x|z) [B, x_dim], detached."""
        if not isinstance(self.decoder, BernoulliDecoder):
            raise ConfigError(f"decode_logits needs a Bernoulli decoder, this model has {type(self.decoder).__name__}")
        z = torch.as_tensor(z)
        if z.ndim != 2 or z.shape[1] != self.latent_dim or not z.dtype.is_floating_point:
            raise InputError(f"z has shape {list(z.shape)} and dtype {z.dtype}; expected floats N x {self.latent_dim}")
        return self.decoder(z.to(self.device, self.dtype))

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per example [B]."""
        return self.decoder.nll(x, z)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Pixel probabilities sigmoid(logits(z)) for z ~ p(z): for people, so detached (no autograd graph)."""
        return torch.sigmoid(self.decode_logits(self.sample_prior(n, generator)))

    def __repr__(self) -> str:
        """One line (``print(model)``): what the model is, not its seventy lines of layers (``model.encoder``,
        ``model.decoder`` and ``model.adversary`` print those)."""
        return f"AVBModel({self.extra_repr()})"

    def extra_repr(self) -> str:
        """The model's id, method, sizes, parameter count and where it was loaded from (before its parts)."""
        n = sum(p.numel() for p in self.parameters())
        parts = [f"id={self.config.get('id')!r}", f"method={self.method!r}", f"x_dim={self.x_dim}"]
        parts += [f"latent_dim={self.latent_dim}", f"parameters={n:,}"]
        parts += [f"adversary={'yes' if self.adversary is not None else 'no'}", f"source={self.source!r}"]
        return ", ".join(parts)

    @torch.no_grad()
    def encoder_moments(
        self, x: Any, n_noise: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of q(z|x) [B, d] each.

        Gaussian encoder: exact. Noise-basis encoder: exact given the moments of the basis vectors, which do
        not depend on x; they are the model's own estimate (:meth:`basis_moments`, the same numbers that
        evaluation and the exported moments graph use). An unconditional sampler: the moments of its samples,
        from the same keyed estimate. ``n_noise`` or ``generator`` asks instead for a one-off estimate from
        ``n_noise`` (default ``BASIS_MOMENT_DRAWS``) draws of ``generator`` (fresh ones when None). Detached; ``x``
        is checked as :meth:`encode` checks it. The first call per set of weights estimates the moments (seconds
        on a CPU) and shows a bar on a terminal.
        """
        enc = self.encoder
        if not enc.has_moments:
            raise ConfigError(f"{type(enc).__name__} has no tractable moments (only AC and Gaussian encoders do)")
        x = self.checked_input(x)
        if isinstance(enc, GaussianEncoder):
            mu, log_sigma = enc.gaussian(x)
            return mu, (2 * log_sigma).exp()
        if n_noise is None and generator is None:
            moments = self.basis_moments()
        else:
            moments = estimate_basis_moments(enc, n_noise or BASIS_MOMENT_DRAWS, generator)
        v_mean, v_var = (m.to(x.device, self.dtype) for m in moments)
        if enc.x_dim == 0:  # unconditional sampler: moments of its own samples
            return v_mean.expand(x.shape[0], -1), v_var.expand(x.shape[0], -1)
        z0, a = enc.location_and_scales(x)
        return z0 + (a * v_mean).sum(1), (a.square() * v_var).sum(1)

    def basis_moments(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's estimate of the mean and (biased) variance of its basis vectors v_i(eps_i), float64 on
        the CPU, [n_basis, d] each ([d] for an unconditional sampler: the moments of z itself).

        One keyed estimate per set of weights: ``BASIS_MOMENT_DRAWS`` noise draws from
        ``keyed_generator(BASIS_MOMENT_KEY)``, evaluated in float32 on the CPU and merged in float64, so it
        depends on the weights alone (not on the device, the dtype or how often it is asked for). It is
        cached and recomputed when the weights it depends on change.
        """
        enc = self.encoder
        if isinstance(enc, GaussianEncoder) or not enc.has_moments:
            raise ConfigError(f"{type(enc).__name__} has no basis vectors whose moments could be estimated")
        parts = enc.basis if isinstance(enc, NoiseBasisEncoder) else enc
        weights = [p.detach().to("cpu", torch.float32) for p in parts.parameters()]
        cached = self.__dict__.get("_basis_moments")
        if cached is not None:
            key, moments = cached
            if len(key) == len(weights) and all(torch.equal(k, w) for k, w in zip(key, weights, strict=True)):
                return moments
        moments = estimate_basis_moments(enc, BASIS_MOMENT_DRAWS, keyed_generator(BASIS_MOMENT_KEY), progress=None)
        self.__dict__["_basis_moments"] = ([w.clone() for w in weights], moments)
        return moments

    def require_adversary(self, what: str) -> nn.Module:
        """The adversary, or a one-line error saying that ``what`` needs it and this model has none."""
        if self.adversary is None:
            if self.method == "vae":
                raise ConfigError(f"{what} needs an adversary; a VAE has none")
            raise ConfigError(
                f"{what} needs the adversary, and this model has none (it was loaded without adversary.safetensors)"
            )
        return self.adversary

    def state_groups(self) -> dict[str, nn.Module]:
        """The parts saved under their own prefixes: encoder.*, decoder.*, adversary.*."""
        groups = {"encoder": self.encoder, "decoder": self.decoder}
        if self.adversary is not None:
            groups["adversary"] = self.adversary
        return groups


@torch.no_grad()
def estimate_basis_moments(
    encoder: nn.Module,
    draws: int = BASIS_MOMENT_DRAWS,
    generator: torch.Generator | None = None,
    chunk: int = 4096,
    progress: bool | None = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased, as tf.nn.moments) variance over ``draws`` noise draws of a noise-basis encoder's basis
    vectors ([n_basis, d] each) or of an unconditional sampler's z ([d] each), float64 on the CPU.

    The encoder is evaluated in float32 on a CPU copy; chunks are merged with Chan's parallel update in float64,
    so the result depends only on the weights, ``draws`` and the generator's draws. ``progress``: a bar (None:
    when stderr is a terminal), since this takes seconds, up to tens of seconds on a busy CPU.
    """
    import sys

    from tqdm.auto import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    enc = copy.deepcopy(encoder).to("cpu", torch.float32).eval()
    if isinstance(enc, NoiseBasisEncoder):
        draw = enc.basis_vectors
    else:
        draw = lambda eps: enc(eps.new_zeros(eps.shape[0], 0), eps)  # noqa: E731
    count, mean, m2 = 0, None, None
    bar = tqdm(total=draws, desc="basis moments (once per set of weights)", disable=not show, leave=False)
    for start in range(0, draws, chunk):
        bar.update(min(chunk, draws - start))
        n = min(chunk, draws - start)
        v = draw(torch.randn(n, enc.noise_dim, generator=generator)).double()
        c_mean, c_m2 = v.mean(0), v.var(0, unbiased=False) * n
        if mean is None:
            count, mean, m2 = n, c_mean, c_m2
            continue
        delta = c_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + c_m2 + delta.square() * (count * n / total)
        count = total
    bar.close()
    assert mean is not None and m2 is not None
    return mean, m2 / count


def build_model(config: Mapping[str, Any]) -> AVBModel:
    """A freshly initialised model for ``config`` (raises ConfigError naming the bad field)."""
    return AVBModel(config)
