"""Networks: output shapes of every encoder, decoder and adversary (MNIST-shaped conv ones included), heads that
start near zero, and configuration checks that name the offending field before anything is allocated."""

from __future__ import annotations

import copy

import pytest
import torch
from onnx_models import MNIST_CONFIG
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

from avb_zoo.errors import ConfigError
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.networks.adversaries import ADVERSARIES, InnerProductAdversary, ResidualAdversary
from avb_zoo.modelling.networks.decoders import DECODERS, BernoulliDecoder, EightSchoolsDecoder, GaussianDecoder
from avb_zoo.modelling.networks.encoders import ENCODERS, GaussianEncoder, NoiseBasisEncoder, NoiseConvEncoder
from avb_zoo.modelling.networks.layers import ConvTrunk

MNIST = (1, 28, 28)
B = 5


def _binary_images(n: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 784, generator=torch.Generator().manual_seed(seed)).round()


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(1234)


# ---------------------------------------------------------------------------------------------------------------
# Encoders


def test_every_encoder_kind_is_tested():
    assert set(ENCODERS) == {"concat-mlp", "noise-conv", "noise-basis", "gaussian"}


@pytest.mark.parametrize("x_dim", [4, 0])
def test_concat_mlp_encoder_shapes(x_dim):
    enc = ENCODERS["concat-mlp"](x_dim=x_dim, noise_dim=7, latent_dim=3, hidden=[16, 16])
    x, eps = torch.rand(B, x_dim), torch.randn(B, 7)
    assert enc(x, eps).shape == (B, 3)
    assert enc.has_moments == (x_dim == 0)  # only the unconditional sampler has (batch) moments
    if x_dim == 0:
        z, mean, var = enc.sample_and_moments(x, eps)
        assert z.shape == mean.shape == var.shape == (B, 3)
        torch.testing.assert_close(mean[0], z.mean(0))
        torch.testing.assert_close(var[0], z.var(0, unbiased=False))
    else:
        with pytest.raises(NotImplementedError):
            enc.sample_and_moments(x, eps)


def test_noise_conv_encoder_mnist_shapes_and_noise_at_every_layer():
    enc = NoiseConvEncoder(image_shape=MNIST, noise_dim=16, latent_dim=8, channels=[8, 16, 16], hidden=[32])
    # 28 -> 14 -> 7 -> 4 with 'SAME' stride-2 convs (the authors' conv1 trunk)
    assert enc.trunk.shapes == [(8, 14, 14), (16, 7, 7), (16, 4, 4)]
    assert enc.trunk.out_features == 16 * 4 * 4
    assert len(enc.trunk.noise_maps) == 3 and len(enc.hidden_noise) == 1
    x, eps = _binary_images(B), torch.randn(B, 16)
    z = enc(x, eps)
    assert z.shape == (B, 8) and enc.noise_dim == 16 and enc.x_dim == 784
    # the noise is really used: another eps gives another z for the same x (relative to z's own size: the
    # head starts at 1e-5 so z is small, but it is a deterministic function of eps)
    assert not torch.allclose(z, enc(x, torch.randn(B, 16)), rtol=0, atol=0)
    # the authors' conv0 layout: strides 1, 1, 2, 2 keep 28x28 twice, then halve
    enc0 = NoiseConvEncoder(image_shape=MNIST, noise_dim=4, latent_dim=2, channels=[2, 2, 2, 2], strides=[1, 1, 2, 2])
    assert [s[1] for s in enc0.trunk.shapes] == [28, 28, 14, 7]
    assert enc0(x, torch.randn(B, 4)).shape == (B, 2)


def test_noise_basis_encoder_conv_trunk_with_batch_norm():
    enc = NoiseBasisEncoder(
        x_dim=784,
        latent_dim=6,
        eps_dim=5,
        n_basis=4,
        image_shape=MNIST,
        channels=[4, 8, 8],
        strides=[2, 2, 2],
        batch_norm=[True, True, False],
        hidden=[32],
        basis_hidden=[16, 16],
    )
    norms = [type(m).__name__ for m in enc.trunk[0].norms]
    assert norms == ["BatchNorm2d", "BatchNorm2d", "Identity"]
    assert enc.noise_dim == 5 * 4
    x, eps = _binary_images(B), torch.randn(B, 20)
    z = enc(x, eps)
    assert z.shape == (B, 6)
    z0, a = enc.location_and_scales(x)
    assert z0.shape == (B, 6) and a.shape == (B, 4, 6)
    assert enc.basis_vectors(eps).shape == (B, 4, 6)
    z2, mean, var = enc.sample_and_moments(x, eps)
    torch.testing.assert_close(z2, z)
    assert mean.shape == var.shape == (B, 6) and (var >= 0).all()
    # training mode normalises with batch statistics, eval mode with running ones: then each row is its own
    enc.eval()
    torch.testing.assert_close(enc(x[:1], eps[:1]), enc(x, eps)[:1])


def test_noise_basis_encoder_starts_near_its_location():
    """a_i = ELU(. - 5) + 1 starts at about exp(-5) = 0.0067 and z0's head at ~1e-5: z starts close to zero."""
    enc = NoiseBasisEncoder(x_dim=10, latent_dim=3, eps_dim=4, n_basis=8, hidden=[32], basis_hidden=[32])
    x = torch.rand(64, 10)
    z0, a = enc.location_and_scales(x)
    assert z0.abs().max() < 1e-3
    # the scale pre-activation is Wx + 0 with Xavier weights: |Wh| is O(1), so a lies in ELU(-5 +- few) + 1
    assert (a > 0).all() and a.max() < 0.2 and (a.median() - 0.0067).abs() < 0.01


def test_gaussian_encoder_shapes_mlp_and_conv():
    enc = GaussianEncoder(x_dim=784, latent_dim=4, image_shape=MNIST, channels=[4, 8], strides=[2, 2], hidden=[16])
    x = _binary_images(B)
    mu, log_sigma = enc.gaussian(x)
    assert mu.shape == log_sigma.shape == (B, 4)
    assert log_sigma.abs().max() < 1e-3  # log-scale head starts near zero: sigma ~ 1
    eps = torch.randn(B, 4)
    torch.testing.assert_close(enc(x, eps), mu + log_sigma.exp() * eps)
    enc_mlp = GaussianEncoder(x_dim=6, latent_dim=2, hidden=[])  # no hidden layer: heads on x itself
    assert enc_mlp(torch.rand(B, 6), torch.randn(B, 2)).shape == (B, 2)


def test_conv_trunk_rejects_mismatched_strides():
    with pytest.raises(ValueError, match="same length"):
        ConvTrunk(MNIST, channels=[4, 4], strides=[2])


# ---------------------------------------------------------------------------------------------------------------
# Decoders


def test_every_decoder_kind_is_tested():
    assert set(DECODERS) == {"bernoulli", "gaussian", "eight-schools"}


@pytest.mark.parametrize(
    ("start_shape", "channels", "strides"),
    [
        ([8, 7, 7], [8, 4], [2, 2, 1]),  # the authors' conv0 layout: 7x7 -> 14 -> 28 -> 28
        ([8, 4, 4], [8, 4], [2, 2, 2]),  # conv1: 4x4 -> 7 -> 14 -> 28 (the 4 -> 7 step needs output padding 0)
    ],
)
def test_transposed_conv_bernoulli_decoder_reaches_28x28(start_shape, channels, strides):
    dec = BernoulliDecoder(
        latent_dim=3,
        x_dim=784,
        hidden=[16],
        image_shape=MNIST,
        start_shape=start_shape,
        channels=channels,
        strides=strides,
    )
    z = torch.randn(B, 3)
    logits = dec(z)
    assert logits.shape == (B, 784)
    x = _binary_images(B)
    nll = dec.nll(x, z)
    assert nll.shape == (B,)
    # -log p(x|z) is the Bernoulli cross-entropy summed over pixels
    expected = -(x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum(1)
    torch.testing.assert_close(nll, expected)


def test_transposed_conv_decoder_rejects_unreachable_start():
    with pytest.raises(ValueError, match="does not lead to 28"):
        BernoulliDecoder(3, 784, hidden=[], image_shape=MNIST, start_shape=[4, 5, 5], channels=[4], strides=[2, 2])
    with pytest.raises(ValueError, match="one stride per layer"):
        BernoulliDecoder(3, 784, hidden=[], image_shape=MNIST, start_shape=[4, 7, 7], channels=[4], strides=[2])


@pytest.mark.parametrize("conv", [False, True])
def test_gaussian_decoder_shapes_and_density(conv):
    kwargs = dict(image_shape=(3, 8, 8), start_shape=[4, 2, 2], channels=[4], strides=[2, 2]) if conv else {}
    dec = GaussianDecoder(latent_dim=2, x_dim=192, hidden=[16], sigmoid_mean=conv, **kwargs)
    z = torch.randn(B, 2)
    mean, log_scale = dec(z)
    assert mean.shape == log_scale.shape == (B, 192)
    if conv:
        assert ((mean > 0) & (mean < 1)).all()
    x = torch.rand(B, 192)
    expected = -torch.distributions.Normal(mean, log_scale.exp()).log_prob(x).sum(1)
    torch.testing.assert_close(dec.nll(x, z), expected)


def test_eight_schools_decoder_shape_and_rejects_other_sizes():
    dec = EightSchoolsDecoder()
    assert dec.nll(torch.zeros(B, 0), torch.randn(B, 10)).shape == (B,)
    with pytest.raises(ValueError, match="latent_dim 10"):
        EightSchoolsDecoder(latent_dim=4)


# ---------------------------------------------------------------------------------------------------------------
# Adversaries


def test_every_adversary_kind_is_tested():
    assert set(ADVERSARIES) == {"inner-product", "residual"}


@pytest.mark.parametrize(
    "make",
    [
        lambda: InnerProductAdversary(x_dim=784, latent_dim=8, hidden=[64, 64], feature_dim=256),
        lambda: ResidualAdversary(x_dim=784, latent_dim=8, width=64, blocks=3),
    ],
    ids=["inner-product", "residual"],
)
def test_adversary_shape_and_prior_term_at_init(make):
    """T(x, z) - |z|^2/2 starts near zero: every learnable head is truncated-normal with std 1e-5.

    Bound: a head's output is at most max|w| * ||h||_1 <= 2e-5 * width * max|h|, a few 1e-3 here even for
    |z| ~ 3; its typical size is 1e-5 * sqrt(width), ~1e-4. A head initialised by Xavier (|w| ~ 0.1) would
    give O(1) and fail; and without the |z|^2/2 term T - |z|^2/2 would be ~ -|z|^2/2 ~ -4.
    """
    adv = make()
    x = _binary_images(64)
    z = 2.0 * torch.randn(64, 8)
    t = adv(x, z)
    assert t.shape == (64,)
    rest = t - 0.5 * z.square().sum(1)
    assert rest.abs().max() < 5e-3, rest.abs().max()
    # ... but T does depend on its inputs through the nets (not a constant zero): a gradient reaches the heads
    t.sum().backward()
    grads = [p.grad for p in adv.parameters() if p.grad is not None and p.grad.abs().sum() > 0]
    assert len(grads) > 4


def test_inner_product_adversary_is_an_inner_product_plus_terms():
    adv = InnerProductAdversary(x_dim=6, latent_dim=3, hidden=[8], feature_dim=5)
    for head in (adv.theta_out, adv.t_x_out, adv.t_z_out):
        torch.nn.init.normal_(head.weight)
    x, z = torch.rand(B, 6), torch.randn(B, 3)
    theta = torch.nn.functional.elu(adv.theta_out(adv.theta(x)))
    expected = (
        (theta * adv.s(z)).sum(1)
        + adv.t_x_out(adv.t_x(x)).squeeze(1)
        + adv.t_z_out(adv.t_z(z)).squeeze(1)
        + 0.5 * z.square().sum(1)
    )
    torch.testing.assert_close(adv(x, z), expected)


# ---------------------------------------------------------------------------------------------------------------
# Whole models from configurations

TOY = {
    "method": "avb",
    "x_dim": 4,
    "latent_dim": 2,
    "encoder": {"name": "concat-mlp", "noise_dim": 8, "hidden": [8]},
    "decoder": {"name": "bernoulli", "hidden": [8]},
    "adversary": {"name": "residual", "width": 8, "blocks": 1},
}

MNIST_AC = MNIST_CONFIG  # a small MNIST-shaped AVB+AC model: noise-basis encoder on a batch-normed conv trunk


def test_mnist_ac_model_from_config():
    model = AVBModel(MNIST_AC)
    x = _binary_images(B)
    gen = torch.Generator().manual_seed(0)
    z = model.encode(x, gen)
    enc = MNIST_AC["encoder"]
    d = MNIST_AC["latent_dim"]
    assert z.shape == (B, d) and model.noise_dim == enc["eps_dim"] * enc["n_basis"] and model.x_dim == 784
    assert model.decode_logits(z).shape == (B, 784)
    assert model.nll(x, z).shape == (B,)
    assert model.sample(3, gen).shape == (3, 784)
    mean, var = model.encoder_moments(x, n_noise=256, generator=gen)
    assert mean.shape == var.shape == (B, d)
    assert model.adversary(x, z).shape == (B,)
    assert set(model.state_groups()) == {"encoder", "decoder", "adversary"}


def test_vae_model_has_no_adversary_and_exact_moments():
    cfg = {**TOY, "method": "vae", "encoder": {"name": "gaussian", "hidden": [8]}}
    model = AVBModel(cfg)
    assert model.adversary is None and model.config["adversary"] is None
    x = torch.rand(B, 4)
    mean, var = model.encoder_moments(x)
    mu, log_sigma = model.encoder.gaussian(x)
    torch.testing.assert_close(mean, mu)
    torch.testing.assert_close(var, (2 * log_sigma).exp())


def _with(base: dict, path: str, value) -> dict:
    cfg = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    node[last] = value
    return cfg


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("encoder.name", "nope", r"encoder\.name = 'nope' is not a known architecture"),
        ("decoder.name", "bernouli", r"decoder\.name = 'bernouli' is not a known architecture"),
        ("adversary.name", 3, r"adversary\.name = 3 is not a known architecture"),
        ("encoder.widths", [3], r"encoder\.widths is not a setting of 'concat-mlp'"),
        ("adversary.hidden", [3], r"adversary\.hidden is not a setting of 'residual'"),
        ("latent_dim", "8", r"latent_dim must be an integer, got '8'"),
        ("latent_dim", True, r"latent_dim must be an integer"),
        ("latent_dim", 0, r"latent_dim must be at least 1"),
        ("x_dim", 2.5, r"x_dim must be an integer"),
        ("x_dim", 10**9, r"x_dim = 1000000000 is out of range"),
        ("encoder.hidden", "abc", r"encoder\.hidden = 'abc' has the wrong type; 'concat-mlp' expects Sequence\[int\]"),
        ("encoder.hidden", [1.5], r"encoder\.hidden = \[1\.5\] has the wrong type"),
        ("encoder.hidden", [[4]], r"encoder\.hidden\[0\] must be a number"),
        ("encoder.hidden", {"a": 1}, r"encoder\.hidden has unsupported type dict"),
        ("encoder.hidden", [-3], r"encoder\.hidden\[0\] = -3 is out of range"),
        ("encoder.hidden", [4] * 100, r"encoder\.hidden has 100 entries"),
        ("encoder.noise_dim", "8", r"encoder\.noise_dim = '8' has the wrong type; 'concat-mlp' expects int"),
        ("encoder.noise_dim", True, r"encoder\.noise_dim = True has the wrong type"),
        ("adversary.width", float("nan"), r"adversary\.width = nan is not a finite number"),
        ("adversary.blocks", 2.0, r"adversary\.blocks = 2\.0 has the wrong type"),
        ("decoder.act", 1, r"decoder\.act = 1 has the wrong type; 'bernoulli' expects str"),
        ("encoder.center_input", 1, r"encoder\.center_input = 1 has the wrong type; 'concat-mlp' expects bool"),
        ("encoder", "concat-mlp", r"encoder must be a table"),
        ("encoder", {"name": "concat-mlp"}, r"encoder \('concat-mlp'\) needs \['noise_dim'\]"),
        ("encoder", {"name": "noise-conv", "noise_dim": 4}, r"needs \['image_shape'\]"),
        ("method", "gan", r"method = 'gan'; choose one of"),
        ("adversary", None, r"method 'avb' needs an adversary"),
        ("format_version", 2, r"format_version 2, newer than this avb-zoo reads \(1\): upgrade avb-zoo"),
        ("image_shape", [1, 28, 28], r"image_shape \[1, 28, 28\] does not hold x_dim = 4 values"),
        ("image_shape", [1, 2], r"image_shape must be \[channels, height, width\]"),
        ("data", "mnist", r"data must be a table"),
    ],
)
def test_config_errors_name_the_field(path, value, message):
    with pytest.raises(ConfigError, match=message):
        AVBModel(_with(TOY, path, value))


def test_config_errors_method_and_encoder_must_fit():
    with pytest.raises(ConfigError, match="'avb-ac' needs an encoder with moments; ConcatMLPEncoder"):
        AVBModel({**TOY, "method": "avb-ac"})
    with pytest.raises(ConfigError, match="'vae' needs the 'gaussian' encoder"):
        AVBModel({**TOY, "method": "vae"})
    with pytest.raises(ConfigError, match="must be a JSON object"):
        AVBModel([TOY])
    # MNIST-shaped config with a mismatched x_dim
    with pytest.raises(ConfigError, match=r"image_shape \[1, 28, 28\] does not hold x_dim = 780"):
        AVBModel({**MNIST_AC, "x_dim": 780})


def test_huge_sizes_are_rejected_before_allocation():
    """10^12 parameters (4 TB) are counted on the meta device and refused without allocating anything."""
    cfg = _with(TOY, "encoder.hidden", [1_000_000, 1_000_000])
    # no clock: had the 4 TB been allocated, the error would be the allocator's, not this count
    with pytest.raises(ConfigError, match=r"encoder would have 1,000,016,000,002 parameters \(limit"):
        AVBModel(cfg)
    big_adv = _with(_with(MNIST_AC, "adversary.feature_dim", 1_000_000), "adversary.hidden", [1000])
    with pytest.raises(ConfigError, match=r"adversary would have .* parameters"):
        AVBModel(big_adv)


def test_build_error_names_the_component():
    """A constructor's own ValueError (here an unreachable decoder start size) becomes a ConfigError naming it."""
    cfg = _with(MNIST_AC, "decoder.start_shape", [8, 5, 5])  # 5 -> 10 -> 20 never reaches 28
    with pytest.raises(ConfigError, match=r"decoder cannot be built from its settings: start size 5"):
        AVBModel(cfg)
    with pytest.raises(ConfigError, match=r"encoder cannot be built from its settings: unknown activation 'tanhh'"):
        AVBModel(_with(TOY, "encoder.act", "tanhh"))
