"""The paper's Eight Schools posterior is symmetric under (tau, eta) -> (-tau, -eta); so is everything AVB+AC
trains on, so any sign asymmetry of a trained sampler comes from its training, not from the code.

The check: mirror a sampler (its last layer's rows) and its adversary (the z columns of its first layer), and
the losses on mirrored contrast draws equal the original's, term by term; and the log joint is mirror-invariant.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.data.eight_schools import variant_log_joint
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.objectives import avb_losses

SHIPPED = Path(__file__).parents[1] / "models" / "eight-schools-avb-ac-v2"
MIRROR = torch.tensor([1.0] + [-1.0] * 9)  # z = (mu, tau, eta_1..8)


def mirrored(model):
    out = copy.deepcopy(model)
    last = [m for m in out.encoder.net.modules() if isinstance(m, torch.nn.Linear)][-1]
    first = out.adversary.inp
    with torch.no_grad():
        last.weight.mul_(MIRROR.to(last.weight).unsqueeze(1))
        last.bias.mul_(MIRROR.to(last.bias))
        first.weight[:, out.adversary.x_dim :] *= MIRROR.to(first.weight)
    return out


def test_log_joint_is_mirror_invariant() -> None:
    z = torch.randn(1000, 10, dtype=torch.float64, generator=keyed_generator(0, "mirror"))
    assert torch.equal(variant_log_joint(z, "paper"), variant_log_joint(z * MIRROR.double(), "paper"))
    assert not torch.equal(variant_log_joint(z, "paper"), variant_log_joint(z.flip(1), "paper"))  # not trivially


def test_avb_ac_losses_are_mirror_equivariant() -> None:
    model = load(SHIPPED).eval()
    twin = mirrored(model)
    batch = 512
    eps = model.sample_noise(batch, keyed_generator(0, "mirror-eps"))
    contrast = torch.randn(batch, 10, generator=keyed_generator(0, "mirror-contrast")).to(eps)
    x = eps.new_zeros(batch, 0)
    with torch.no_grad():
        z, z_twin = model.encode(x, eps=eps), twin.encode(x, eps=eps)
        assert torch.allclose(z_twin, z * MIRROR.to(z), atol=1e-6)
        losses = avb_losses(model, x, eps, contrast)
        twin_losses = avb_losses(twin, x, eps, contrast * MIRROR.to(contrast))
    for name in ("primal", "adversary", "rec", "kl"):
        a, b = getattr(losses, name), getattr(twin_losses, name)
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5), name
    # and a sampler that is not the mirror image scores differently: the check can tell
    with torch.no_grad():
        shifted = avb_losses(twin, x, eps, contrast)
    assert not torch.allclose(shifted.adversary, losses.adversary, rtol=1e-5, atol=1e-5)
