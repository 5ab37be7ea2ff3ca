"""Generative models p(x|z). Each decoder gives ``nll(x, z)``: -log p(x|z) summed over the data dimensions.

``forward(z)`` returns the distribution's parameters (Bernoulli logits, or Gaussian mean and log-scale);
``nll`` is what the objectives and AIS use, so a posterior-inference problem with no decoder network can
plug in its own log-likelihood the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from avb_zoo.modelling.networks.layers import activation, mlp, xavier_


class Decoder(nn.Module):
    latent_dim: int
    x_dim: int

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per example, summed over data dimensions: [B]."""
        raise NotImplementedError


class DeconvBody(nn.Module):
    """FC layers, reshape to a feature map, then 5x5 transposed convs up to the image (the authors' conv0/conv1)."""

    def __init__(
        self,
        latent_dim: int,
        image_shape: Sequence[int],
        fc: Sequence[int],
        start_shape: Sequence[int],
        channels: Sequence[int],
        strides: Sequence[int],
        out_channels: int,
        act: str,
    ) -> None:
        super().__init__()
        c0, h0, w0 = start_shape
        self.start_shape = (c0, h0, w0)
        self.fc = mlp([latent_dim, *fc, c0 * h0 * w0], act)
        all_strides = list(strides)
        if len(all_strides) != len(channels) + 1:
            raise ValueError("a transposed-conv decoder needs one stride per layer, the output layer included")
        sizes = [image_shape[1]]  # sizes backwards from the image: 'SAME' transposed convs multiply by the stride
        for s in reversed(all_strides):
            sizes.insert(0, -(-sizes[0] // s))
        if sizes[0] != h0:
            raise ValueError(f"start size {h0} does not lead to {image_shape[1]} with strides {all_strides}")
        layers: list[nn.Module] = []
        c = c0
        for i, (out_c, s) in enumerate(zip([*channels, out_channels], all_strides, strict=True)):
            output_padding = sizes[i + 1] - (sizes[i] - 1) * s - 1
            layers.append(nn.ConvTranspose2d(c, out_c, 5, stride=s, padding=2, output_padding=output_padding))
            if i < len(channels):
                layers.append(activation(act))
            c = out_c
        self.deconv = xavier_(nn.Sequential(*layers))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(z).view(-1, *self.start_shape)
        return self.deconv(h).flatten(1)


def _body(
    latent_dim: int,
    x_dim: int,
    out_per_pixel: int,
    hidden: Sequence[int],
    act: str,
    image_shape: Sequence[int] | None,
    start_shape: Sequence[int] | None,
    channels: Sequence[int],
    strides: Sequence[int],
) -> nn.Module:
    if channels or start_shape:
        if image_shape is None or start_shape is None:
            raise ValueError("a transposed-conv decoder needs image_shape and start_shape")
        return DeconvBody(
            latent_dim,
            image_shape,
            hidden,
            start_shape,
            channels,
            strides,
            out_per_pixel * image_shape[0],
            act,
        )
    return mlp([latent_dim, *hidden, out_per_pixel * x_dim], act, final_activation=False)


class BernoulliDecoder(Decoder):
    """p(x|z) = prod_pixels Bernoulli(sigmoid(logits(z))), for binary images."""

    def __init__(
        self,
        latent_dim: int,
        x_dim: int,
        hidden: Sequence[int] = (64, 64, 64),
        act: str = "elu",
        image_shape: Sequence[int] | None = None,
        start_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (),
        strides: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.latent_dim, self.x_dim = latent_dim, x_dim
        self.body = _body(latent_dim, x_dim, 1, hidden, act, image_shape, start_shape, channels, strides)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits [B, x_dim]."""
        return self.body(z)

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        logits = self.forward(z).to(x.dtype)  # float32 under bf16 autocast: the likelihood is summed in full precision
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)


class GaussianDecoder(Decoder):
    """p(x|z) = prod_dims N(mean(z), exp(log_scale(z))^2), for continuous data (the authors' CelebA decoder).

    ``sigmoid_mean`` squashes the mean into (0, 1) for images, as the reference code does.
    """

    def __init__(
        self,
        latent_dim: int,
        x_dim: int,
        hidden: Sequence[int] = (64, 64, 64),
        act: str = "elu",
        sigmoid_mean: bool = False,
        image_shape: Sequence[int] | None = None,
        start_shape: Sequence[int] | None = None,
        channels: Sequence[int] = (),
        strides: Sequence[int] = (),
    ) -> None:
        super().__init__()
        self.latent_dim, self.x_dim = latent_dim, x_dim
        self.sigmoid_mean = sigmoid_mean
        self.body = _body(latent_dim, x_dim, 2, hidden, act, image_shape, start_shape, channels, strides)

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log_scale), each [B, x_dim]."""
        out = self.body(z)
        mean, log_scale = out.view(out.shape[0], 2, -1).unbind(1)
        return (torch.sigmoid(mean) if self.sigmoid_mean else mean), log_scale

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        mean, log_scale = (t.to(x.dtype) for t in self.forward(z))
        r = (x - mean) * torch.exp(-log_scale)
        return (0.5 * r.square() + log_scale + 0.5 * math.log(2 * math.pi)).sum(1)


class EightSchoolsDecoder(Decoder):
    """The Eight Schools model seen as a fixed "decoder": nll = log N(z; 0, I) - log p(y, z).

    ``variant`` names the model (``avb_zoo.data.eight_schools.VARIANTS``: ``paper`` or ``posteriordb``).

    With this choice the AVB objective rec + KL estimate becomes T + log r(z) - log p(y, z), the
    posterior-inference objective, while the adversary still contrasts against the N(0, I) reference.
    """

    def __init__(self, latent_dim: int = 10, x_dim: int = 0, variant: str = "posteriordb") -> None:
        super().__init__()
        from avb_zoo.data.eight_schools import EightSchoolsLikelihood

        if latent_dim != 10 or x_dim != 0:
            raise ValueError("the Eight Schools problem has latent_dim 10 and no observed x")
        self.latent_dim, self.x_dim = latent_dim, x_dim
        self.log_joint = EightSchoolsLikelihood(variant)

    def nll(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        log_std_normal = -0.5 * (z.square() + math.log(2 * math.pi)).sum(1)
        return log_std_normal - self.log_joint(z)


DECODERS: dict[str, type[Decoder]] = {
    "bernoulli": BernoulliDecoder,
    "gaussian": GaussianDecoder,
    "eight-schools": EightSchoolsDecoder,
}
