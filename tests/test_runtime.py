"""The onnxruntime wrappers and the encode / sample / reconstruct commands: torch-free, seeded, strict on input."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from avb_zoo.cli import main
from budget import budget
from click.testing import CliRunner
from onnx_models import exported
from PIL import Image

from avb_zoo.errors import CheckpointError, GraphError, InputError, ProviderError
from avb_zoo.modelling.factory import load
from avb_zoo.runtime import Encoder, Sampler, as_model_input, load_images, resolve_model_dir
from avb_zoo.runtime.ort import ort
from avb_zoo.runtime.stream import ENCODER_NOISE, normal


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return exported(tmp_path_factory, "mnist")


@pytest.fixture(scope="module")
def digits():
    from avb_zoo.data.mnist import load_mnist

    return load_mnist("tests/data/mnist-subset", "test")[:6].numpy()  # uint8 [6, 784]


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_encode_and_sample_never_import_torch(mnist, digits, tmp_path):
    np.save(tmp_path / "x.npy", digits)
    x, m = tmp_path / "x.npy", str(mnist)
    runs = [
        ["encode", m, x, "--out", tmp_path / "z.npy"],
        ["sample", m, "-n", "4", "--out", tmp_path / "g.png"],
        ["reconstruct", m, x, "--out", tmp_path / "r.png"],
    ]
    script = textwrap.dedent(
        """
        import json, sys
        import avb_zoo.runtime
        from avb_zoo.cli import main
        for args in json.loads(sys.argv[1]):
            main(args, standalone_mode=False)
        assert "torch" not in sys.modules, "torch was imported"
        print("torch-free")
        """
    )
    argv = json.dumps([[str(a) for a in run] for run in runs])
    done = subprocess.run([sys.executable, "-c", script, argv], capture_output=True, text=True, timeout=budget(120))
    assert done.returncode == 0, done.stderr
    assert "torch-free" in done.stdout
    assert np.load(tmp_path / "z.npy").shape == (6, 8)
    assert Image.open(tmp_path / "g.png").format == "PNG"


def test_encoder_runs_the_model_function(mnist, digits):
    """The wrapper's z equals the torch model's for the same noise, and its noise comes from the seed alone."""
    encoder = Encoder(mnist)
    assert encoder.providers[0] == "CPUExecutionProvider" and encoder.noise_dim == 32
    x = digits.astype(np.float32) / 255
    eps = normal(5, ENCODER_NOISE, (6, 32))  # the runtime's portable stream (avb_zoo.runtime.stream)
    with torch.no_grad():
        ref = load(mnist).encode(torch.from_numpy(x), eps=torch.from_numpy(eps)).numpy()
    np.testing.assert_allclose(encoder.run(x, eps), ref, rtol=0, atol=1e-4)
    np.testing.assert_allclose(encoder.encode(x, seed=5), ref, rtol=0, atol=1e-4)
    z = encoder.encode(x, samples=3, seed=1)
    assert z.shape == (6, 3, 8)
    np.testing.assert_array_equal(z, encoder.encode(x, samples=3, seed=1, batch_size=4))  # batching-independent
    assert np.abs(z - encoder.encode(x, samples=3, seed=2)).max() > 1e-3
    assert np.abs(z[:, 0] - z[:, 1]).max() > 1e-3  # each draw has its own noise


def test_moments_agree_with_many_encoded_samples(mnist, digits):
    """Mean of K = 4000 samples vs the moments graph: each coordinate's error has std sqrt(Var / K), plus the
    baked-moment error of std sqrt(Var / 65536); 6 combined standard deviations bound 48 coordinates."""
    encoder = Encoder(mnist)
    mean, var = encoder.moments(digits)
    z = encoder.encode(digits, samples=4000, seed=0)
    assert (var > 1e-3).all()
    assert (np.abs(z.mean(1) - mean) <= 6 * np.sqrt(var / 4000 + var / 65536)).all()
    np.testing.assert_allclose(z.var(1), var, rtol=0.2)  # relative std sqrt(2 / 4000) = 0.022 for Gaussian-like z


def test_input_forms_agree(mnist, digits, tmp_path):
    encoder = Encoder(mnist)
    png_dir = tmp_path / "pngs"
    png_dir.mkdir()
    for i, image in enumerate(digits):
        Image.fromarray(image.reshape(28, 28)).save(png_dir / f"{i:02d}.png")
    as_float = digits.reshape(6, 28, 28).astype(np.float64) / 255
    expected = encoder.encode(digits, seed=3)
    for form in (as_float, as_float[:, None], load_images(png_dir, encoder.image_shape)):
        np.testing.assert_allclose(encoder.encode(form, seed=3), expected, rtol=0, atol=1e-6)
    one = load_images(png_dir / "02.png", encoder.image_shape)
    np.testing.assert_array_equal(one, digits[2:3] / np.float32(255))


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((2, 783), np.float32), "shape"),
        (np.zeros((2, 27, 28), np.float32), "shape"),
        (np.zeros(784, np.float32), "shape"),
        (np.zeros((0, 784), np.float32), "no images"),
        (np.zeros((2, 784), np.int64), "dtype int64"),
        (np.full((2, 784), 1.5, np.float32), "must lie in"),
        (np.full((2, 784), -0.1), "must lie in"),
        (np.where(np.eye(2, 784) > 0, np.nan, 0.5), "NaN"),
    ],
)
def test_bad_arrays_are_refused(array, message):
    with pytest.raises(InputError, match=message):
        as_model_input(array, (1, 28, 28))


def test_bad_files_are_refused(tmp_path):
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    (tmp_path / "junk.png").write_bytes(b"not a png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "empty").mkdir()
    cases = {"objects.npy": "Python objects", "junk.npy": "not a readable", "junk.png": "not an image Pillow can read"}
    cases.update({"notes.txt": "expected a .npy", "empty": "no image files", "nope.npy": "not exist"})
    for name, message in cases.items():
        with pytest.raises(InputError, match=message):
            load_images(tmp_path / name, (1, 28, 28))


def test_encode_command_bad_input_exits_1_without_output(mnist, tmp_path):
    np.save(tmp_path / "bad.npy", np.full((3, 784), 2.0, np.float32))
    result = run_cli("encode", mnist, tmp_path / "bad.npy", "--out", tmp_path / "z.npy")
    assert result.exit_code == 1 and "must lie in [0, 1]" in result.output
    assert not (tmp_path / "z.npy").exists()
    result = run_cli("encode", mnist, tmp_path / "bad.npy", "--out", tmp_path / "z.png")
    assert result.exit_code == 1 and "must end in .npy" in result.output


def test_sample_command_writes_grid_and_arrays(mnist, tmp_path):
    result = run_cli(
        "sample", mnist, "-n", 10, "--out", tmp_path / "g.png", "--npy", tmp_path / "s.npy", "--seed", 4, "--no-labels"
    )
    assert result.exit_code == 0, result.output
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (10, 784) and samples.min() >= 0 and samples.max() <= 1 and samples.std() > 0.01
    np.testing.assert_array_equal(samples, Sampler(mnist).sample(10, seed=4))
    grid = Image.open(tmp_path / "g.png")
    assert grid.size == (4 * 30 + 2, 3 * 30 + 2)  # 4 columns, 3 rows of 28 px tiles with 2 px gaps
    run_cli("sample", mnist, "-n", 10, "--out", tmp_path / "b.png", "--npy", tmp_path / "b.npy", "--binarize")
    assert set(np.unique(np.load(tmp_path / "b.npy"))) <= {0.0, 1.0}


def test_sample_command_leaves_nothing_when_an_output_fails(mnist, tmp_path):
    (tmp_path / "file").write_text("a file, not a folder")
    result = run_cli("sample", mnist, "--out", tmp_path / "g.png", "--npy", tmp_path / "file" / "s.npy")
    assert result.exit_code == 1 and "cannot write" in result.output
    assert not (tmp_path / "g.png").exists()
    assert run_cli("sample", mnist, "-n", 0, "--out", tmp_path / "g.png").exit_code == 2


def test_reconstruct_command(mnist, digits, tmp_path):
    np.save(tmp_path / "x.npy", digits.reshape(6, 28, 28))
    result = run_cli(
        "reconstruct",
        mnist,
        tmp_path / "x.npy",
        "--out",
        tmp_path / "r.png",
        "--npy",
        tmp_path / "r.npy",
        "--no-labels",
    )
    assert result.exit_code == 0, result.output
    assert np.load(tmp_path / "r.npy").shape == (6, 784)
    assert Image.open(tmp_path / "r.png").size == (6 * 30 + 2, 2 * 30 + 2)  # 3 pairs a row, 2 rows


def vouch(folder, name):
    """Make onnx/verification.json record the graph's present bytes (a report that lies consistently)."""
    report_path = folder / "onnx" / "verification.json"
    report = json.loads(report_path.read_text())
    data = (folder / "onnx" / f"{name}.onnx").read_bytes()
    report["graphs"].setdefault(name, {})["sha256"] = hashlib.sha256(data).hexdigest()
    report_path.write_text(json.dumps(report))


def test_graphs_that_do_not_match_the_config_are_refused(mnist, tmp_path):
    bad = tmp_path / "model"
    shutil.copytree(mnist, bad)
    (bad / "onnx" / "sampler.onnx").write_bytes(b"\x08\x07garbage")
    with pytest.raises(GraphError, match="not the graph its export verified"):
        Sampler(bad)
    vouch(bad, "sampler")  # past the export's record, the graph itself is still checked
    with pytest.raises(GraphError, match="not a usable ONNX graph"):
        Sampler(bad)
    shutil.copy(mnist / "onnx" / "decoder.onnx", bad / "onnx" / "sampler.onnx")
    vouch(bad, "sampler")
    with pytest.raises(GraphError, match="not an avb-zoo sampler graph"):
        Sampler(bad)
    config = (bad / "config.json").read_text().replace('"latent_dim": 8', '"latent_dim": 9')
    (bad / "config.json").write_text(config)
    with pytest.raises(GraphError, match="another architecture"):
        Encoder(bad)
    (bad / "onnx" / "encoder.onnx").unlink()
    result = run_cli("encode", bad, bad / "x.npy", "--out", tmp_path / "z.npy")
    assert result.exit_code == 1 and "run `avb-zoo export" in result.output


def test_providers_are_explicit_and_checked(mnist):
    assert Sampler(mnist, providers="cpu").providers == ["CPUExecutionProvider"]
    with pytest.raises(ProviderError, match="not available"):
        Sampler(mnist, providers="NoSuchExecutionProvider")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        with pytest.raises(ProviderError, match="CUDAExecutionProvider"):
            Sampler(mnist, providers="cuda")


def test_model_folder_resolution(mnist, tmp_path):
    assert resolve_model_dir(str(mnist)) == mnist
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="holds no config.json"):
        resolve_model_dir(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="is a file"):
        resolve_model_dir(mnist / "config.json")
    with pytest.raises(CheckpointError, match="not a model folder"):
        resolve_model_dir(tmp_path / "missing")


def test_row_blocks_cover_the_batch_in_order():
    from avb_zoo.runtime.session import MIN_ROWS_PER_THREAD, row_blocks

    for rows in (1, 7, 15, 16, 17, 257, 1024):
        for threads in (1, 2, 3, 8):
            blocks = row_blocks(rows, threads)
            assert blocks[0].start == 0 and blocks[-1].stop == rows
            assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:], strict=False))
            assert 1 <= len(blocks) <= threads
            if len(blocks) > 1:
                assert min(b.stop - b.start for b in blocks) >= MIN_ROWS_PER_THREAD
    assert len(row_blocks(257, 2)) == 2 and len(row_blocks(15, 2)) == 1


@pytest.mark.parametrize("rows", [1, 16, 257])
def test_split_batches_give_the_whole_batch_result(mnist, rows):
    """Row blocks run on threads equal the batch run whole: every row of these graphs is computed alone, so
    only kernel blocking could change the last bits (1e-6 bounds that for outputs of order 1)."""
    rng = np.random.default_rng(rows)
    x = rng.random((rows, 784), dtype=np.float32)
    eps = rng.standard_normal((rows, 32), dtype=np.float32)
    z = rng.standard_normal((rows, 8), dtype=np.float32)
    one, three = Encoder(mnist, threads=1), Encoder(mnist, threads=3)
    np.testing.assert_allclose(three.run(x, eps), one.run(x, eps), rtol=0, atol=1e-6)
    s_one, s_three = Sampler(mnist, threads=1), Sampler(mnist, threads=3)
    np.testing.assert_allclose(s_three.probabilities(z), s_one.probabilities(z), rtol=0, atol=1e-6)
    mean_1, var_1 = one.moments(x)
    mean_3, var_3 = three.moments(x)
    np.testing.assert_allclose(mean_3, mean_1, rtol=0, atol=1e-6)
    np.testing.assert_allclose(var_3, var_1, rtol=0, atol=1e-6)


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_bad_thread_counts_are_refused(mnist, threads):
    with pytest.raises(InputError, match="threads must be a positive integer"):
        Encoder(mnist, threads=threads)
