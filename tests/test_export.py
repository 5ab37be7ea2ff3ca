"""ONNX export: parity with PyTorch through onnxruntime, graph format and metadata, failures that leave nothing."""

from __future__ import annotations

import json
import shutil

import numpy as np
import onnx
import pytest
import torch
from onnx_models import build, exported

from avb_zoo.errors import ExportError
from avb_zoo.modelling.factory import load
from avb_zoo.runtime.ort import ort

ATOL = 1e-4


@pytest.fixture(scope="module", params=["toy", "mnist"])
def folder(request, tmp_path_factory):
    return exported(tmp_path_factory, request.param)


def session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_report_shows_parity_at_every_batch_size(folder):
    report = json.loads((folder / "onnx" / "verification.json").read_text())
    assert report["passed"] and report["batch_sizes"] == [1, 2, 17, 257]
    assert set(report["graphs"]) >= {"encoder", "decoder", "sampler"}
    for graph in report["graphs"].values():
        assert [c["batch"] for c in graph["checks"]] == [1, 2, 17, 257]
        for check in graph["checks"]:
            assert all(0 <= d <= ATOL for d in check["max_error"].values()), check
            assert all(check["max_error"][k] <= d for k, d in check["max_abs_diff"].items()), check


@pytest.mark.parametrize("batch", [1, 301])
def test_graphs_reproduce_the_model_api(folder, batch):
    """Independently of the exporter's own check: fresh inputs, the model's public methods as reference."""
    model = load(folder)
    gen = torch.Generator().manual_seed(batch)
    x = torch.rand(batch, model.x_dim, generator=gen)
    eps = torch.randn(batch, model.noise_dim, generator=gen)
    z = torch.randn(batch, model.latent_dim, generator=gen)
    with torch.no_grad():
        expected = {
            "encoder": [model.encode(x, eps=eps)],
            "decoder": [model.decode_logits(z)],
            "sampler": [torch.sigmoid(model.decode_logits(z))],
        }
    feeds = {"encoder": {"x": x.numpy(), "eps": eps.numpy()}, "decoder": {"z": z.numpy()}, "sampler": {"z": z.numpy()}}
    for name, refs in expected.items():
        outs = session(folder / "onnx" / f"{name}.onnx").run(None, feeds[name])
        for out, ref in zip(outs, refs, strict=True):
            assert out.shape == tuple(ref.shape)
            np.testing.assert_allclose(out, ref.numpy(), rtol=0, atol=ATOL)
        assert np.abs(outs[0]).max() > 1e-2  # the function is not trivially near zero


def test_graph_format_and_metadata(folder):
    report = json.loads((folder / "onnx" / "verification.json").read_text())
    model = load(folder)
    assert not list((folder / "onnx").glob("*.data"))  # weights inside each file
    for name, graph in report["graphs"].items():
        proto = onnx.load(folder / graph["file"])
        onnx.checker.check_model(proto)
        assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= 18
        ops = {n.op_type for n in proto.graph.node}
        assert not ops & {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike", "Bernoulli"}
        for value in list(proto.graph.input) + list(proto.graph.output):
            assert value.type.tensor_type.shape.dim[0].dim_param == "batch"
        meta = {p.key: p.value for p in proto.metadata_props}
        assert meta["avb_zoo.graph"] == name
        assert meta["avb_zoo.id"] == report["model_id"] and report["model_id"].startswith("test-")
        assert meta["avb_zoo.model_version"] == "2" and proto.model_version == 2
        assert meta["avb_zoo.noise_dim"] == str(model.noise_dim)
        assert meta["avb_zoo.latent_dim"] == str(model.latent_dim)
        assert "[0, 1]" in meta.get("avb_zoo.input.x", "[0, 1]")
        assert ("avb_zoo.input.eps" in meta) == (name == "encoder")
        assert graph["sha256"] and graph["bytes"] == (folder / graph["file"]).stat().st_size
        assert not ops & {"Softplus", "Elu", "Einsum"}  # rewritten into operations onnxruntime runs fast


def test_batch_norm_is_exported_in_eval_mode(tmp_path_factory):
    folder = exported(tmp_path_factory, "mnist")  # exported from a model in training mode
    model = build("mnist")
    gen = torch.Generator().manual_seed(7)
    x, eps = torch.rand(64, 784, generator=gen), torch.randn(64, model.noise_dim, generator=gen)
    out = session(folder / "onnx" / "encoder.onnx").run(None, {"x": x.numpy(), "eps": eps.numpy()})[0]
    with torch.no_grad():
        eval_z = model.eval().encode(x, eps=eps).numpy()
        train_z = model.train().encode(x, eps=eps).numpy()  # after eval: a training pass moves the running stats
    np.testing.assert_allclose(out, eval_z, rtol=0, atol=ATOL)
    assert np.abs(out - train_z).max() > 1e-2  # batch statistics would give another function


def test_one_moments_estimate_for_graph_model_and_ais(tmp_path_factory):
    """moments.onnx, ``encoder_moments`` and the AIS start distribution use one estimate of the basis moments.

    The graph's constants equal the model's estimate exactly; the AIS start distribution's moments equal
    ``encoder_moments`` within 1e-6. The graph's outputs differ from them only by float32 rounding of the
    x-dependent trunk, which onnxruntime evaluates with its own kernels and the exporter's activation rewrites:
    measured 4.5e-7 on the means and 4.3e-6 on variances of up to 8.5 (1.1e-6 relative), checked against
    5e-6 * max(1, |value|). Repeated calls and a fresh load give identical moments.
    """
    from onnx import numpy_helper

    from avb_zoo.evaluation.metrics import initial_distribution
    from avb_zoo.modelling.objectives import VARIANCE_FLOOR

    folder = exported(tmp_path_factory, "mnist")
    model = load(folder)
    x = torch.rand(17, 784, generator=torch.Generator().manual_seed(3))
    graph = onnx.load(str(folder / "onnx" / "moments.onnx"))
    constants = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer if i.name in ("v_mean", "v_var")}
    onnx_mean, onnx_var = session(folder / "onnx" / "moments.onnx").run(None, {"x": x.numpy()})
    with torch.no_grad():
        mean, var = model.encoder_moments(x)
        again = model.encoder_moments(x)
        fresh = load(folder).encoder_moments(x)
        q0 = initial_distribution(model, x)
    assert all(torch.equal(a, b) for a, b in zip((mean, var), again, strict=True))
    assert all(torch.equal(a, b) for a, b in zip((mean, var), fresh, strict=True))
    assert (var > 1e-3).all()  # the noise matters, so the comparison is not vacuous
    v_mean, v_var = model.basis_moments()
    assert set(constants) == {"v_mean", "v_var"}
    np.testing.assert_array_equal(constants["v_mean"], v_mean.float().numpy())
    np.testing.assert_array_equal(constants["v_var"], v_var.float().numpy())
    q0_var = q0.std.square() - VARIANCE_FLOOR  # q0 = N(E[z|x], Var[z|x] + floor)
    pairs = {
        "moments.onnx vs encoder_moments, mean": (onnx_mean, mean.numpy()),
        "moments.onnx vs encoder_moments, var": (onnx_var, var.numpy()),
        "AIS q0 vs encoder_moments, mean": (q0.mean.numpy(), mean.numpy()),
        "AIS q0 vs encoder_moments, var": (q0_var.numpy(), var.numpy()),
        "AIS q0 vs moments.onnx, mean": (q0.mean.numpy(), onnx_mean),
        "AIS q0 vs moments.onnx, var": (q0_var.numpy(), onnx_var),
    }
    for name, (got, ref) in pairs.items():
        diff = np.abs(got - ref)
        print(
            f"max abs difference, {name}: {diff.max():.3g} (relative to max(1, |value|): "
            f"{(diff / np.maximum(1.0, np.abs(ref))).max():.3g})"
        )
        limit = 5e-6 * np.maximum(1.0, np.abs(ref)) if "onnx" in name else 1e-6
        assert (diff <= limit).all(), (name, diff.max())


def test_basis_moments_estimate_is_cached_and_follows_the_weights():
    model = build("mnist").eval()
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        first = model.encoder_moments(x)
        cached = model.basis_moments()
        assert model.basis_moments() is cached  # not recomputed while the weights stay
        bias = model.encoder.basis[0].bias
        kept = bias.clone()
        bias.add_(0.5)
        changed = model.encoder_moments(x)
        assert not torch.allclose(changed[0], first[0])
        bias.copy_(kept)
        restored = model.encoder_moments(x)
    assert all(torch.equal(a, b) for a, b in zip(first, restored, strict=True))


def test_moments_graph_matches_monte_carlo_moments(tmp_path_factory):
    """The baked basis moments come from 65536 keyed draws; an independent 65536-draw estimate must agree.

    Mean: each coordinate differs by sum_i a_i (m_i - m'_i), whose std is sqrt(2 Var[z|x] / n); 6 of those
    bound 40 coordinates with a false-alarm rate below 1e-7. Variance: the relative error of a variance
    estimate has std sqrt((kurtosis - 1) / n) per side; with kurtosis below 10 two sides give 0.017, so 0.1
    is about 6 standard deviations.
    """
    folder = exported(tmp_path_factory, "mnist")
    model = load(folder)
    x = torch.rand(5, 784, generator=torch.Generator().manual_seed(3))
    mean, var = session(folder / "onnx" / "moments.onnx").run(None, {"x": x.numpy()})
    with torch.no_grad():
        ref_mean, ref_var = model.encoder_moments(x, n_noise=65536, generator=torch.Generator().manual_seed(99))
    ref_mean, ref_var = ref_mean.numpy(), ref_var.numpy()
    assert (ref_var > 1e-3).all()  # the noise matters, so the check is not vacuous
    assert (np.abs(mean - ref_mean) <= 6 * np.sqrt(2 * ref_var / 65536)).all()
    np.testing.assert_allclose(var, ref_var, rtol=0.1)


def test_failed_check_removes_outputs_and_raises(tmp_path, monkeypatch):
    import avb_zoo.export.exporter as exporter

    out = tmp_path / "out"
    (out / "onnx").mkdir(parents=True)
    for stale in ("encoder.onnx", "sampler.onnx", "verification.json"):
        (out / "onnx" / stale).write_bytes(b"from an earlier export")

    def broken(data, spec, batch_sizes, generator, threads=None):
        bad = {name: 0.5 for name in spec.outputs}
        return [{"batch": b, "max_abs_diff": bad, "max_error": bad} for b in batch_sizes]

    monkeypatch.setattr(exporter, "check_parity", broken)
    with pytest.raises(ExportError, match=r"max error 0.5 \(\|onnxruntime - torch\| / max\(1, \|torch\|\)\)"):
        exporter.export_model(build("toy"), out, model_id="toy-avb-v1", seed=0)
    assert not list((out / "onnx").iterdir()) and not (out / "config.json").exists()


def test_export_refuses_a_folder_of_another_model(tmp_path_factory, tmp_path):
    toy = exported(tmp_path_factory, "toy")
    out = tmp_path / "other"
    out.mkdir()
    shutil.copy(exported(tmp_path_factory, "mnist") / "config.json", out / "config.json")
    from avb_zoo.export import export_folder

    with pytest.raises(ExportError, match="another model"):
        export_folder(toy, out)
    assert not (out / "onnx").exists()


def test_export_command_errors_exit_1(tmp_path):
    from avb_zoo.cli import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, ["export", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "not a model folder" in result.output
    assert not (tmp_path / "o").exists()
    result = CliRunner().invoke(main, ["export", "toy-avb-v1"])  # an id is never exported into a cache in place
    assert result.exit_code == 1 and "give --out" in result.output


def test_onnxruntime_friendly_rewrites_compute_the_same_functions():
    from avb_zoo.export.ort_friendly import FastBasisEncoder, FastELU, FastSoftplus

    x = torch.cat([torch.linspace(-100, 100, 20001), torch.tensor([-1e30, 1e30, 0.0, 19.999, 20.0, 20.001])])
    torch.testing.assert_close(FastSoftplus()(x), torch.nn.functional.softplus(x), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(FastELU()(x), torch.nn.functional.elu(x), rtol=1e-6, atol=1e-7)
    encoder = build("mnist").encoder.eval()
    gen = torch.Generator().manual_seed(0)
    x, eps = torch.rand(9, 784, generator=gen), torch.randn(9, encoder.noise_dim, generator=gen)
    with torch.no_grad():
        torch.testing.assert_close(FastBasisEncoder(encoder)(x, eps), encoder(x, eps), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "size"),
    [(1, 2, 0, 7), (2, 2, 0, 4), (2, 2, 1, 7), (2, 1, 1, 5), (3, 2, 2, 4)],
)
def test_sub_pixel_transposed_conv_equals_conv_transpose(
    stride: int, padding: int, output_padding: int, size: int
) -> None:
    from avb_zoo.export.ort_friendly import SubPixelConvTranspose

    torch.manual_seed(0)
    conv = torch.nn.ConvTranspose2d(3, 4, 5, stride=stride, padding=padding, output_padding=output_padding)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = conv(x), SubPixelConvTranspose(conv)(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)  # float32 sums of at most 3*5*5 products
