"""Adversaries T(x, z), trained to tell q(z|x) samples from contrast samples.

Both forms add ||z||^2 / 2 (that is -log p(z) up to a constant) so the network itself only has to learn
log q(z|x); their learnable output heads start near zero, so T starts close to that prior term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from avb_zoo.modelling.networks.layers import activation, mlp, near_zero_, xavier_


class Adversary(nn.Module):
    x_dim: int
    latent_dim: int


class InnerProductAdversary(Adversary):
    """T(x, z) = <theta(x), s(z)> + T_x(x) + T_z(z) + ||z||^2 / 2 (the authors' MNIST adversary).

    Four MLPs with ``hidden`` widths and leaky ReLU: theta ends in ELU, s is linear, T_x and T_z end in a
    scalar head initialised near zero; theta's last layer also starts near zero.
    """

    def __init__(
        self,
        x_dim: int,
        latent_dim: int,
        hidden: Sequence[int] = (1024, 1024, 1024),
        feature_dim: int = 8192,
        act: str = "lrelu",
    ) -> None:
        super().__init__()
        self.x_dim, self.latent_dim = x_dim, latent_dim
        self.theta = mlp([x_dim, *hidden], act)
        self.theta_out = near_zero_(nn.Linear(hidden[-1], feature_dim))
        self.s = mlp([latent_dim, *hidden, feature_dim], act, final_activation=False)
        self.t_x = mlp([x_dim, *hidden], act)
        self.t_x_out = near_zero_(nn.Linear(hidden[-1], 1))
        self.t_z = mlp([latent_dim, *hidden], act)
        self.t_z_out = near_zero_(nn.Linear(hidden[-1], 1))
        self.theta_act = nn.ELU()

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        full = z.dtype  # the logit is formed in the input's dtype (float32 under bf16 autocast)
        theta = self.theta_act(self.theta_out(self.theta(x))).to(full)
        inner = (theta * self.s(z).to(full)).sum(1)
        t_x = self.t_x_out(self.t_x(x)).squeeze(1).to(full)
        t_z = self.t_z_out(self.t_z(z)).squeeze(1).to(full)
        return inner + t_x + t_z + 0.5 * z.square().sum(1)


class ResidualAdversary(Adversary):
    """A residual MLP on concat(x, z), for small problems (the toy and Eight Schools notebooks).

    concat(x, z) -> FC(width) act; ``blocks`` x [d = inner_act(FC(net)); net = act(net + FC_zero(d))]; -> FC(1).
    The residual branches' second layers and the output head start at (near) zero.
    """

    def __init__(
        self,
        x_dim: int,
        latent_dim: int,
        width: int = 256,
        blocks: int = 5,
        act: str = "elu",
        inner_act: str = "relu",
    ) -> None:
        super().__init__()
        self.x_dim, self.latent_dim = x_dim, latent_dim
        self.inp = xavier_(nn.Linear(x_dim + latent_dim, width))
        self.inner = nn.ModuleList(xavier_(nn.Linear(width, width)) for _ in range(blocks))
        self.outer = nn.ModuleList(nn.Linear(width, width) for _ in range(blocks))
        for layer in self.outer:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.act = activation(act)
        self.inner_act = activation(inner_act)
        self.head = near_zero_(nn.Linear(width, 1))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        net = self.act(self.inp(torch.cat([x, z], dim=1)))
        for inner, outer in zip(self.inner, self.outer, strict=True):
            net = self.act(net + outer(self.inner_act(inner(net))))
        return self.head(net).squeeze(1).to(z.dtype) + 0.5 * z.square().sum(1)


ADVERSARIES: dict[str, type[Adversary]] = {
    "inner-product": InnerProductAdversary,
    "residual": ResidualAdversary,
}
