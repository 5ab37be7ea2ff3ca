"""Export-time rewrites that compute the same functions with operations onnxruntime runs fast.

Measured on a 2-core CPU (onnxruntime 1.32, one thread, 256 x 16 x 14 x 14 floats): the exported
``Softplus`` (``Softplus`` + ``Greater`` + ``Where`` for torch's threshold 20) took 24 ms against torch's
1.5 ms, ``Elu`` 6 ms on 256 x 32 x 128 against 1.6 ms for ``max(x, min(exp(x), 1) - 1)``, and the noise-basis
encoder's ``Einsum`` (with the transposes a per-layer MatMul needs) about three times a MatMul kept in
[n_basis, B, .] layout. The rewrites apply to the copies that are exported; the parity check compares the
exported graph with the original modules.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from avb_zoo.modelling.networks.encoders import NoiseBasisEncoder


class FastSoftplus(nn.Module):
    """softplus with torch's threshold 20: max(x, log1p(exp(min(x, 20)))) (log1p(exp(x)) > x below it)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, torch.log1p(torch.exp(torch.clamp(x, max=20.0))))


class FastELU(nn.Module):
    """ELU with alpha 1: max(x, min(exp(x), 1) - 1), since exp(x) - 1 >= x everywhere (taking the exponential
    first is about 10% faster in onnxruntime than clamping first; an overflow to inf is clamped to 1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.maximum(x, torch.clamp(torch.exp(x), max=1.0) - 1.0)


class SubPixelConvTranspose(nn.Module):
    """A square-strided ConvTranspose2d as one stride-1 convolution that computes all s*s output phases at once,
    followed by a pixel shuffle (onnxruntime's ConvTranspose on the CPU took 19 ms where this takes 10 ms for the
    MNIST decoder's three layers at batch 256, and it does not gain from a second thread).

    Output position o = s*q + r receives x[q + t] * w[p + r - s*t] for every tap t whose kernel index is valid;
    the convolution's kernel holds those taps for each phase r (zeros elsewhere), in pixel-shuffle channel order.
    """

    def __init__(self, ct: nn.ConvTranspose2d) -> None:
        super().__init__()
        k, s, p, op = ct.kernel_size[0], ct.stride[0], ct.padding[0], ct.output_padding[0]
        w = ct.weight.detach()  # [in, out, k, k]
        taps = [t for t in range(-k, k + 1) if any(0 <= p + r - s * t < k for r in range(s))]
        t_lo, t_hi = min(taps), max(taps)
        weight = torch.zeros(w.shape[1] * s * s, w.shape[0], t_hi - t_lo + 1, t_hi - t_lo + 1, dtype=w.dtype)
        for r_h in range(s):
            for r_w in range(s):
                for a, t_h in enumerate(range(t_lo, t_hi + 1)):
                    for b, t_w in enumerate(range(t_lo, t_hi + 1)):
                        j_h, j_w = p + r_h - s * t_h, p + r_w - s * t_w
                        if 0 <= j_h < k and 0 <= j_w < k:
                            weight[r_h * s + r_w :: s * s, :, a, b] = w[:, :, j_h, j_w].T
        self.weight = nn.Parameter(weight)
        self.bias = None if ct.bias is None else nn.Parameter(ct.bias.detach().repeat_interleave(s * s))
        self.k, self.s, self.p, self.op, self.t_lo, self.t_hi = k, s, p, op, t_lo, t_hi

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w, s = x.shape[2], x.shape[3], self.s
        h_out = (h - 1) * s - 2 * self.p + self.k + self.op
        w_out = (w - 1) * s - 2 * self.p + self.k + self.op
        q_h, q_w = -(-h_out // s), -(-w_out // s)
        pad_w, pad_h = max(0, q_w - w + self.t_hi), max(0, q_h - h + self.t_hi)
        x = F.pad(x, (-self.t_lo, pad_w, -self.t_lo, pad_h))
        y = F.conv2d(x, self.weight, self.bias)[:, :, :q_h, :q_w]
        return F.pixel_shuffle(y, s)[:, :, :h_out, :w_out]


def _square(pair: tuple[int, ...]) -> bool:
    return len(set(pair)) == 1


def _replacement(module: nn.Module) -> nn.Module | None:
    if (
        isinstance(module, nn.ConvTranspose2d)
        and module.groups == 1
        and module.dilation == (1, 1)
        and module.padding_mode == "zeros"
        and all(_square(v) for v in (module.kernel_size, module.stride, module.padding, module.output_padding))
    ):
        return SubPixelConvTranspose(module)
    if isinstance(module, nn.Softplus) and module.beta == 1.0 and module.threshold == 20.0:
        return FastSoftplus()
    if isinstance(module, nn.ELU) and module.alpha == 1.0:
        return FastELU()
    return None


def rewrite_activations(module: nn.Module) -> nn.Module:
    """Replace Softplus, ELU and ConvTranspose2d submodules of ``module`` in place (others are kept); returns it."""
    for name, child in list(module.named_children()):
        new = _replacement(child)
        if new is not None:
            setattr(module, name, new)
        else:
            rewrite_activations(child)
    return module


class FastBasisEncoder(nn.Module):
    """NoiseBasisEncoder's z = z0(x) + sum_i a_i(x) v_i(eps_i), its basis MLPs run as MatMuls over [n_basis, B, .].

    The coefficients a_i = ELU(scales(h) - 5) + 1 use FastELU (the encoder calls the functional ELU, which the
    activation rewrite cannot reach).
    """

    def __init__(self, encoder: NoiseBasisEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.elu = FastELU()

    def location_and_scales(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        enc = self.encoder
        features = enc.trunk(x)
        a = self.elu(enc.scales(features) - 5.0) + 1.0
        return enc.z0(features), a.view(-1, enc.n_basis, enc.latent_dim)

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        enc = self.encoder
        z0, a = self.location_and_scales(x)
        h = eps.view(-1, enc.n_basis, enc.eps_dim).transpose(0, 1)
        for i, layer in enumerate(enc.basis):
            h = torch.matmul(h, layer.weight) + layer.bias.unsqueeze(1)
            if i < len(enc.basis) - 1:
                h = enc.act(h)
        return z0 + (a.transpose(0, 1) * h).sum(0)
