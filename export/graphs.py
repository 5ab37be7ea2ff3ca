"""The torch modules that are exported: one per graph, each a pure function of its inputs.

Noise is always an input, so every graph is deterministic. The moments graph of a noise-basis (Adaptive
Contrast) encoder needs the mean and variance of the basis vectors v_i(eps_i); they do not depend on x, so
they are estimated once here from many noise draws (65536 by default, keyed by a seed) and stored in the
graph as constants. Its outputs are then exact given those constants and match ``AVBModel.encoder_moments``
up to Monte Carlo error of order sqrt(var / draws).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from avb_zoo.model import AVBModel
from avb_zoo.networks.decoders import BernoulliDecoder
from avb_zoo.networks.encoders import Encoder, GaussianEncoder, NoiseBasisEncoder
from avb_zoo.rng import keyed_generator
from avb_zoo.runtime.conventions import EPS_CONVENTION, GRAPHS, X_CONVENTION, Z_CONVENTION

DEFAULT_MOMENT_DRAWS = 65536


class EncoderGraph(nn.Module):
    """(x, eps) -> z."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, eps)


class GaussianMomentsGraph(nn.Module):
    """x -> (mu, sigma^2) of the VAE's Gaussian q(z|x): exact."""

    def __init__(self, encoder: GaussianEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, log_sigma = self.encoder.gaussian(x)
        return mu, (2.0 * log_sigma).exp()


class BasisMomentsGraph(nn.Module):
    """x -> (E[z|x], Var[z|x]) = (z0 + sum_i a_i E[v_i], sum_i a_i^2 Var[v_i]) with the basis moments baked in."""

    def __init__(self, encoder: NoiseBasisEncoder, v_mean: torch.Tensor, v_var: torch.Tensor) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("v_mean", v_mean)
        self.register_buffer("v_var", v_var)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z0, a = self.encoder.location_and_scales(x)
        return z0 + (a * self.v_mean).sum(1), (a.square() * self.v_var).sum(1)


class DecoderGraph(nn.Module):
    """z -> Bernoulli logits [B, x_dim]."""

    def __init__(self, decoder: BernoulliDecoder) -> None:
        super().__init__()
        self.decoder = decoder

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)


class SamplerGraph(DecoderGraph):
    """z -> pixel probabilities sigmoid(logits) [B, x_dim]; feed z ~ N(0, I) to sample."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))


@torch.no_grad()
def basis_moments(
    encoder: NoiseBasisEncoder, draws: int = DEFAULT_MOMENT_DRAWS, seed: int = 0, chunk: int = 4096
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (biased, as tf.nn.moments) variance of v_i(eps_i), each [n_basis, d], from ``draws`` noise draws.

    Chunks are merged with Chan's parallel update in float64, so the result does not lose precision to the
    chunking and depends only on (seed, draws).
    """
    gen = keyed_generator(seed, "basis-moments")
    count, mean, m2 = 0, None, None
    for start in range(0, draws, chunk):
        n = min(chunk, draws - start)
        v = encoder.basis_vectors(torch.randn(n, encoder.noise_dim, generator=gen)).double()
        c_mean, c_m2 = v.mean(0), v.var(0, unbiased=False) * n
        if mean is None:
            count, mean, m2 = n, c_mean, c_m2
            continue
        delta = c_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        m2 = m2 + c_m2 + delta.square() * (count * n / total)
        count = total
    assert mean is not None and m2 is not None
    return mean.float(), (m2 / count).float()


@dataclass
class GraphSpec:
    """One graph to export: its module, the trailing size of each input, how to draw test inputs, metadata."""

    name: str
    module: nn.Module
    sizes: dict[str, int]
    draw: dict[str, str]  # input name -> "unit" (uniform in [0, 1]) or "normal"
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        return GRAPHS[self.name][0]

    @property
    def outputs(self) -> tuple[str, ...]:
        return GRAPHS[self.name][1]

    def example(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Random inputs of this batch size, drawn as the graph's users draw them."""
        makers: dict[str, Callable[..., torch.Tensor]] = {"unit": torch.rand, "normal": torch.randn}
        return tuple(makers[self.draw[n]](batch, self.sizes[n], generator=generator) for n in self.inputs)


def _moments_graph(encoder: Encoder, draws: int, seed: int) -> tuple[nn.Module | None, str]:
    """The moments graph of an encoder and a note on what it computes (or None and why there is none)."""
    if isinstance(encoder, GaussianEncoder):
        return GaussianMomentsGraph(encoder), "exact mean and variance of the Gaussian q(z|x)"
    if isinstance(encoder, NoiseBasisEncoder):
        v_mean, v_var = basis_moments(encoder, draws, seed)
        note = (
            f"mean and variance of q(z|x) given basis-vector moments estimated once from {draws} noise draws "
            f"(seed {seed}) and stored as constants; they do not depend on x"
        )
        return BasisMomentsGraph(encoder, v_mean, v_var), note
    return None, f"{type(encoder).__name__} has no tractable moments"


def graph_specs(
    model: AVBModel, moment_draws: int = DEFAULT_MOMENT_DRAWS, moment_seed: int = 0
) -> tuple[list[GraphSpec], dict[str, str]]:
    """The graphs this model can give, on eval-mode copies of its parts, and the reasons for those it cannot."""
    encoder = copy.deepcopy(model.encoder).float().cpu().eval()
    decoder = copy.deepcopy(model.decoder).float().cpu().eval()
    specs: list[GraphSpec] = []
    skipped: dict[str, str] = {}
    x, d = model.x_dim, model.latent_dim
    eps_note = {"input.eps": EPS_CONVENTION}
    if x == 0:
        for name in ("encoder", "moments"):
            skipped[name] = "the encoder takes no input x (an unconditional sampler)"
    else:
        sizes = {"x": x, "eps": encoder.noise_dim}
        draw = {"x": "unit", "eps": "normal"}
        notes = {"input.x": X_CONVENTION, **eps_note}
        if isinstance(encoder, NoiseBasisEncoder):
            notes["noise_layout"] = f"eps = {encoder.n_basis} blocks of {encoder.eps_dim}, one per basis vector"
        specs.append(GraphSpec("encoder", EncoderGraph(encoder), sizes, draw, notes))
        moments, note = _moments_graph(encoder, moment_draws, moment_seed)
        if moments is None:
            skipped["moments"] = note
        else:
            notes = {"input.x": X_CONVENTION, "moments": note}
            specs.append(GraphSpec("moments", moments, {"x": x}, {"x": "unit"}, notes))
    if isinstance(decoder, BernoulliDecoder):
        notes = {"input.z": Z_CONVENTION}
        specs.append(GraphSpec("decoder", DecoderGraph(decoder), {"z": d}, {"z": "normal"}, notes))
        specs.append(GraphSpec("sampler", SamplerGraph(decoder), {"z": d}, {"z": "normal"}, notes))
    else:
        for name in ("decoder", "sampler"):
            skipped[name] = f"{type(decoder).__name__} gives no Bernoulli logits"
    for spec in specs:
        spec.module.eval()
    return specs, skipped
