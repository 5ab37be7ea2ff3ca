"""The torch modules that are exported: one per graph, each a pure function of its inputs.

Noise is always an input, so every graph is deterministic. The moments graph of a noise-basis (Adaptive
Contrast) encoder needs the mean and variance of the basis vectors v_i(eps_i); they do not depend on x. The
graph stores the model's own estimate (``AVBModel.basis_moments``: 65536 draws from a fixed key) as
constants, the numbers ``AVBModel.encoder_moments`` and the AIS start distribution use, so all three give
the same moments up to float32 rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from avb_zoo.errors import shown
from avb_zoo.modelfile.layout import EPS_CONVENTION, GRAPHS, X_CONVENTION, Z_CONVENTION
from avb_zoo.modelling.model import BASIS_MOMENT_DRAWS, BASIS_MOMENT_KEY, AVBModel
from avb_zoo.modelling.networks.decoders import BernoulliDecoder
from avb_zoo.modelling.networks.encoders import Encoder, GaussianEncoder, NoiseBasisEncoder

from .ort_friendly import FastBasisEncoder, rewrite_activations

# how each input is drawn for tests: images uniform in [0, 1], noise and latents N(0, 1)
DRAWS: dict[str, Callable[..., torch.Tensor]] = {"x": torch.rand, "eps": torch.randn, "z": torch.randn}


class EncoderGraph(nn.Module):
    """(x, eps) -> z."""

    def __init__(self, encoder: Encoder | FastBasisEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        return self.encoder(x, eps)


class PosteriorGraph(nn.Module):
    """eps -> z for a posterior sampler (x_dim 0): the encoder fed an empty x, so z ~ q(z) as the model draws it."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, eps: torch.Tensor) -> torch.Tensor:
        return self.encoder(eps.new_zeros(eps.shape[0], 0), eps)


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

    def __init__(
        self, encoder: NoiseBasisEncoder | FastBasisEncoder, v_mean: torch.Tensor, v_var: torch.Tensor
    ) -> None:
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


def basis_moments(model: AVBModel) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's basis-vector moments (``AVBModel.basis_moments``), as the float32 constants of the graph."""
    v_mean, v_var = model.basis_moments()
    return v_mean.float(), v_var.float()


@dataclass
class GraphSpec:
    """One graph to export: the module exported, the reference it must reproduce, input sizes and draws, notes."""

    name: str
    module: nn.Module  # what is exported (with the onnxruntime-friendly rewrites)
    reference: nn.Module  # the model's own computation, which the exported graph is checked against
    sizes: dict[str, int]  # trailing size of x, eps and z
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def inputs(self) -> tuple[str, ...]:
        return GRAPHS[self.name][0]

    @property
    def outputs(self) -> tuple[str, ...]:
        return GRAPHS[self.name][1]

    def example(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """Random inputs of this batch size, drawn as the graph's users draw them."""
        return tuple(DRAWS[n](batch, self.sizes[n], generator=generator) for n in self.inputs)


def _modules(
    encoder: Encoder,
    decoder: nn.Module,
    basis: tuple[torch.Tensor, torch.Tensor] | None,
    fast: bool,
    conditional: bool,
) -> dict[str, nn.Module]:
    """The graph modules over these parts: the reference ones, or (``fast``) the onnxruntime-friendly ones.

    A conditional encoder (x_dim > 0) gives the encoder and moments graphs; one without x, the posterior graph.
    """
    if fast:
        encoder = rewrite_activations(copy.deepcopy(encoder))
        decoder = rewrite_activations(copy.deepcopy(decoder))
    graphs: dict[str, nn.Module] = {}
    if not conditional:
        graphs["posterior"] = PosteriorGraph(encoder)
    else:
        basis_encoder = FastBasisEncoder(encoder) if fast and isinstance(encoder, NoiseBasisEncoder) else encoder
        graphs["encoder"] = EncoderGraph(basis_encoder)
        if isinstance(encoder, GaussianEncoder):
            graphs["moments"] = GaussianMomentsGraph(encoder)
        elif isinstance(encoder, NoiseBasisEncoder) and basis is not None:
            graphs["moments"] = BasisMomentsGraph(basis_encoder, *basis)
    if isinstance(decoder, BernoulliDecoder):
        graphs["decoder"] = DecoderGraph(decoder)
        graphs["sampler"] = SamplerGraph(decoder)
    return {name: module.eval() for name, module in graphs.items()}


def graph_specs(model: AVBModel) -> tuple[list[GraphSpec], dict[str, str]]:
    """The graphs this model can give, on eval-mode copies of its parts, and the reasons for those it cannot."""
    conditional = model.x_dim > 0
    encoder = copy.deepcopy(model.encoder).float().cpu().eval()
    decoder = copy.deepcopy(model.decoder).float().cpu().eval()
    basis = None
    notes: dict[str, dict[str, str]] = {"decoder": {"input.z": Z_CONVENTION}, "sampler": {"input.z": Z_CONVENTION}}
    notes["encoder"] = {"input.x": X_CONVENTION, "input.eps": EPS_CONVENTION}
    notes["posterior"] = {"input.eps": EPS_CONVENTION, "output.z": "float32 [B, latent_dim], posterior draws"}
    names = getattr(getattr(decoder, "log_joint", None), "variant", None)
    if names is not None:  # a model whose decoder is a named joint density (Eight Schools) names z's coordinates
        notes["posterior"]["parameter_names"] = ",".join(names.param_names)
    notes["moments"] = {"input.x": X_CONVENTION, "moments": "exact mean and variance of the Gaussian q(z|x)"}
    if isinstance(encoder, NoiseBasisEncoder):
        basis = basis_moments(model)
        notes["encoder"]["noise_layout"] = f"eps = {encoder.n_basis} blocks of {encoder.eps_dim}, one per basis vector"
        notes["moments"]["moments"] = (
            f"mean and variance of q(z|x) given the model's basis-vector moments (its one estimate, from "
            f"{BASIS_MOMENT_DRAWS} noise draws keyed {shown(BASIS_MOMENT_KEY)}), stored as constants; they do not "
            "depend on x"
        )
    reference = _modules(encoder, decoder, basis, fast=False, conditional=conditional)
    exported = _modules(encoder, decoder, basis, fast=True, conditional=conditional)
    sizes = {"x": model.x_dim, "eps": model.noise_dim, "z": model.latent_dim}
    specs = [GraphSpec(name, module, reference[name], sizes, notes[name]) for name, module in exported.items()]
    skipped = {}
    for name in GRAPHS:
        if name in exported:
            continue
        if not conditional and name in ("encoder", "moments"):
            skipped[name] = "the encoder takes no input x (a posterior sampler: see the posterior graph)"
        elif conditional and name == "posterior":
            skipped[name] = "the encoder takes an input x (see the encoder graph)"
        elif name == "moments":
            skipped[name] = f"{type(encoder).__name__} has no tractable moments"
        else:
            skipped[name] = f"{type(decoder).__name__} gives no Bernoulli logits"
    return specs, skipped
