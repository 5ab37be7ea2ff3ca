"""Inference models q(z|x): implicit (noise in, sample out) for AVB, Gaussian for the VAE.

Every encoder has ``noise_dim`` (the size of the per-example noise vector ``eps`` it consumes) and
``forward(x, eps) -> z``. Noise always comes in from outside, so the same function can be exported to ONNX,
evaluated under a fixed key, and compared between code paths. Encoders that can tell the mean and
variance of q(z|x) (needed by Adaptive Contrast and by AIS) implement ``sample_and_moments``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avb_zoo.modelling.networks.layers import ConvTrunk, StackedLinear, activation, mlp, near_zero_, xavier_


class Encoder(nn.Module):
    """Common interface: ``x_dim`` inputs, ``noise_dim`` noise inputs, ``latent_dim`` outputs."""

    x_dim: int
    noise_dim: int
    latent_dim: int
    has_moments: bool = False

    def sample_and_moments(
        self, x: torch.Tensor, eps: torch.Tensor, moment_eps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z for each (x, eps) plus the mean and variance of q(z|x) estimated from a batch of noise: ``eps``
        itself, or ``moment_eps`` (the whole global batch's noise when each process holds a share of it, so that
        the estimate does not depend on the number of processes)."""
        raise NotImplementedError(f"{type(self).__name__} has no tractable moments")


def _trunk(
    x_dim: int,
    image_shape: Sequence[int] | None,
    channels: Sequence[int],
    strides: Sequence[int],
    hidden: Sequence[int],
    act: str,
    batch_norm: Sequence[bool] | None = None,
) -> tuple[nn.Module, int]:
    """Deterministic feature extractor: convs (images) then an MLP; returns (module, feature size)."""
    parts: list[nn.Module] = []
    n = x_dim
    if channels:
        if image_shape is None:
            raise ValueError("a convolutional trunk needs image_shape")
        conv = ConvTrunk(image_shape, channels, strides, batch_norm=batch_norm, act=act)
        parts.append(conv)
        n = conv.out_features
    if hidden:
        parts.append(mlp([n, *hidden], act))
        n = hidden[-1]
    return nn.Sequential(*parts), n


class ConcatMLPEncoder(Encoder):
    """z = MLP(concat(x, eps)): the toy and Eight Schools sampler (x_dim = 0 makes it unconditional).

    An unconditional sampler has tractable moments in the authors' sense: the batch mean and variance of its
    own samples (the Eight Schools notebook's Adaptive Contrast).
    """

    def __init__(
        self,
        x_dim: int,
        noise_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (64, 64, 64),
        act: str = "elu",
        center_input: bool = False,
    ) -> None:
        super().__init__()
        self.x_dim, self.noise_dim, self.latent_dim = x_dim, noise_dim, latent_dim
        self.center_input = center_input
        self.has_moments = x_dim == 0
        self.net = mlp([x_dim + noise_dim, *hidden, latent_dim], act, final_activation=False)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        if self.center_input:
            x = 2.0 * x - 1.0
        return self.net(torch.cat([x, eps], dim=1))

    def sample_and_moments(self, x, eps, moment_eps=None):
        if not self.has_moments:
            return super().sample_and_moments(x, eps)
        z = self.forward(x, eps)
        z_m = z if moment_eps is None else self.forward(x.new_zeros(len(moment_eps), 0), moment_eps)
        mean = z_m.mean(0, keepdim=True).expand_as(z)
        var = z_m.var(0, unbiased=False, keepdim=True).expand_as(z)
        return z, mean, var


class NoiseConvEncoder(Encoder):
    """Noise-injected conv encoder: eps enters every conv layer through a linear map (the authors' conv0/conv1)."""

    def __init__(
        self,
        image_shape: Sequence[int],
        noise_dim: int,
        latent_dim: int,
        channels: Sequence[int] = (16, 32, 32),
        strides: Sequence[int] = (2, 2, 2),
        hidden: Sequence[int] = (800,),
        act: str = "elu",
    ) -> None:
        super().__init__()
        c, h, w = image_shape
        self.x_dim, self.noise_dim, self.latent_dim = c * h * w, noise_dim, latent_dim
        self.trunk = ConvTrunk(image_shape, channels, strides, noise_dim=noise_dim, act=act)
        n = self.trunk.out_features
        self.hidden = nn.ModuleList()
        self.hidden_noise = nn.ModuleList()
        for width in hidden:
            self.hidden.append(nn.Linear(n, width))
            self.hidden_noise.append(nn.Linear(noise_dim, width))
            n = width
        self.act = activation(act)
        xavier_(self.hidden)
        xavier_(self.hidden_noise)
        self.head = near_zero_(nn.Linear(n, latent_dim))

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        h = self.trunk(x, eps)
        for layer, noise in zip(self.hidden, self.hidden_noise, strict=True):
            h = self.act(layer(h) + noise(eps))
        return self.head(h)


class NoiseBasisEncoder(Encoder):
    """Adaptive-Contrast encoder z = z0(x) + sum_i a_i(x) * v_i(eps_i) (the authors' conv0_ac/conv1_ac head).

    Each v_i is its own MLP of its own noise eps_i and does not depend on x, so
    E[z|x] = z0 + sum_i a_i E[v_i] and Var[z|x] = sum_i a_i^2 Var[v_i] (the v_i are independent).
    ``eps`` is the concatenation of the ``n_basis`` noise vectors, each of size ``eps_dim``.
    """

    has_moments = True

    def __init__(
        self,
        x_dim: int,
        latent_dim: int,
        eps_dim: int = 32,
        n_basis: int = 16,
        image_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (),
        strides: Sequence[int] = (),
        batch_norm: Sequence[bool] | None = None,
        hidden: Sequence[int] = (800,),
        basis_hidden: Sequence[int] = (128, 128, 128),
        act: str = "elu",
    ) -> None:
        super().__init__()
        self.x_dim, self.latent_dim = x_dim, latent_dim
        self.eps_dim, self.n_basis = eps_dim, n_basis
        self.noise_dim = eps_dim * n_basis
        self.trunk, n = _trunk(x_dim, image_shape, channels, strides, hidden, act, batch_norm)
        self.z0 = near_zero_(nn.Linear(n, latent_dim))
        self.scales = xavier_(nn.Linear(n, n_basis * latent_dim))
        sizes = [eps_dim, *basis_hidden, latent_dim]
        self.basis = nn.ModuleList(StackedLinear(n_basis, a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.act = activation(act)

    def basis_vectors(self, eps: torch.Tensor) -> torch.Tensor:
        """v_i(eps_i) for every basis: [B, n_basis * eps_dim] -> [B, n_basis, latent_dim]."""
        h = eps.view(-1, self.n_basis, self.eps_dim)
        for i, layer in enumerate(self.basis):
            h = layer(h)
            if i < len(self.basis) - 1:
                h = self.act(h)
        return h.to(eps.dtype)  # float32 under bf16 autocast: z - mean is a difference of these sums

    def location_and_scales(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z0(x) [B, d] and the positive coefficients a_i(x) [B, n_basis, d] (ELU(. - 5) + 1, ~0.0067 at init)."""
        h = self.trunk(x)
        # in the input's dtype (float32 under bf16 autocast): ELU(s - 5) + 1 ~ 0.0067 cancels 0.9933 against 1
        a = torch.nn.functional.elu(self.scales(h).to(x.dtype) - 5.0) + 1.0
        return self.z0(h).to(x.dtype), a.view(-1, self.n_basis, self.latent_dim)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        z0, a = self.location_and_scales(x)
        return z0 + (a * self.basis_vectors(eps)).sum(1)

    def moments_from_basis(
        self, z0: torch.Tensor, a: torch.Tensor, v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of z|x from the (biased, as tf.nn.moments) batch moments of the basis vectors."""
        v_mean = v.mean(0)
        v_var = v.var(0, unbiased=False)
        return z0 + (a * v_mean).sum(1), (a.square() * v_var).sum(1)

    def sample_and_moments(self, x, eps, moment_eps=None):
        z0, a = self.location_and_scales(x)
        v = self.basis_vectors(eps)
        mean, var = self.moments_from_basis(z0, a, v if moment_eps is None else self.basis_vectors(moment_eps))
        return z0 + (a * v).sum(1), mean, var


class GaussianEncoder(Encoder):
    """The VAE's q(z|x) = N(mu(x), diag sigma(x)^2), reparameterised as z = mu + sigma * eps."""

    has_moments = True

    def __init__(
        self,
        x_dim: int,
        latent_dim: int,
        image_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (),
        strides: Sequence[int] = (),
        hidden: Sequence[int] = (64, 64, 64),
        act: str = "elu",
    ) -> None:
        super().__init__()
        self.x_dim, self.latent_dim, self.noise_dim = x_dim, latent_dim, latent_dim
        self.trunk, n = _trunk(x_dim, image_shape, channels, strides, hidden, act)
        self.mean_head = xavier_(nn.Linear(n, latent_dim))
        self.log_scale_head = near_zero_(nn.Linear(n, latent_dim))

    def gaussian(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu, log sigma) of q(z|x)."""
        h = self.trunk(x)
        return self.mean_head(h), self.log_scale_head(h)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        mu, log_sigma = self.gaussian(x)
        return mu + log_sigma.exp() * eps

    def sample_and_moments(self, x, eps, moment_eps=None):
        mu, log_sigma = self.gaussian(x)
        return mu + log_sigma.exp() * eps, mu, (2 * log_sigma).exp()


ENCODERS: dict[str, type[Encoder]] = {
    "concat-mlp": ConcatMLPEncoder,
    "noise-conv": NoiseConvEncoder,
    "noise-basis": NoiseBasisEncoder,
    "gaussian": GaussianEncoder,
}
