"""Building blocks shared by encoders, decoders and adversaries, initialised as the authors' TF-slim code.

TF-slim defaults: Xavier-uniform weights and zero biases; output heads that must start near zero use a
truncated normal with a tiny standard deviation (1e-5 in the reference code).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from avb_zoo.errors import shown

ACTIVATIONS: dict[str, type[nn.Module] | None] = {
    "elu": nn.ELU,
    "relu": nn.ReLU,
    "softplus": nn.Softplus,
    "lrelu": None,  # leaky ReLU with the authors' leak 0.2, built below
    "linear": nn.Identity,
}


def activation(name: str) -> nn.Module:
    """The activation module called ``name`` (lrelu has leak 0.2, as in the reference ops)."""
    if name == "lrelu":
        return nn.LeakyReLU(0.2)
    cls = ACTIVATIONS.get(name)
    if cls is None:
        raise ValueError(f"unknown activation {shown(name)}; choose one of {sorted(ACTIVATIONS)}")
    return cls()


def xavier_(module: nn.Module) -> nn.Module:
    """Xavier-uniform weights and zero biases for every Linear/Conv in ``module`` (TF-slim's defaults)."""
    for m in module.modules():
        if isinstance(m, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def near_zero_(layer: nn.Linear, std: float = 1e-5) -> nn.Linear:
    """Initialise an output head near zero (truncated normal, as the reference code's heads)."""
    nn.init.trunc_normal_(layer.weight, std=std, a=-2 * std, b=2 * std)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(sizes: Sequence[int], act: str, final_activation: bool = True) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with ``act`` between them (and after the last one if asked)."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if final_activation or i < len(sizes) - 2:
            layers.append(activation(act))
    return xavier_(nn.Sequential(*layers))


class StackedLinear(nn.Module):
    """``m`` independent linear maps applied at once: input [B, m, n_in] -> [B, m, n_out] (one batched matmul)."""

    def __init__(self, m: int, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(m, n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(m, n_out))
        bound = math.sqrt(6.0 / (n_in + n_out))  # Xavier-uniform per map
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bmi,mio->bmo", x, self.weight) + self.bias


def conv_out_size(size: int, stride: int) -> int:
    """Spatial size after a 'SAME'-padded convolution with this stride (TF semantics)."""
    return -(-size // stride)


class ConvTrunk(nn.Module):
    """5x5 'SAME' convolutions with ELU (optionally batch-normed), flattened: the encoders' deterministic part.

    ``noise_dim > 0`` adds ``Linear(eps)`` to every layer's pre-activation, the authors' noise injection.
    """

    def __init__(
        self,
        image_shape: Sequence[int],
        channels: Sequence[int],
        strides: Sequence[int],
        noise_dim: int = 0,
        batch_norm: Sequence[bool] | None = None,
        act: str = "elu",
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError("channels and strides must have the same length")
        c, h, w = image_shape
        self.image_shape = (c, h, w)
        self.convs = nn.ModuleList()
        self.noise_maps = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.shapes: list[tuple[int, int, int]] = []
        bn = list(batch_norm) if batch_norm is not None else [False] * len(channels)
        for out_c, s, use_bn in zip(channels, strides, bn, strict=True):
            self.convs.append(nn.Conv2d(c, out_c, kernel_size, stride=s, padding=kernel_size // 2))
            h, w, c = conv_out_size(h, s), conv_out_size(w, s), out_c
            self.shapes.append((c, h, w))
            if noise_dim > 0:
                self.noise_maps.append(nn.Linear(noise_dim, c * h * w))
            # TF batch_norm decay 0.999, eps 1e-3 -> PyTorch momentum 0.001
            self.norms.append(nn.BatchNorm2d(c, eps=1e-3, momentum=1e-3) if use_bn else nn.Identity())
        self.act = activation(act)
        self.out_features = c * h * w
        xavier_(self)

    def forward(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> torch.Tensor:
        h = x.reshape(x.shape[0], *self.image_shape) * 2.0 - 1.0  # the authors centre images as 2x - 1
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if len(self.noise_maps):
                h = h + self.noise_maps[i](eps).view(-1, *self.shapes[i])
            h = self.act(self.norms[i](h))
        return h.flatten(1)
