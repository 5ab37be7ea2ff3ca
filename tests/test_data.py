"""Data layer: IDX reading/writing, MNIST files, download, splits, binarisation, toy data, Eight Schools."""

from __future__ import annotations

import functools
import gzip
import http.server
import math
import os
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from avb_zoo.data import eight_schools, mnist, toy
from avb_zoo.data.idx import read_idx, write_idx
from avb_zoo.errors import ChecksumError, DataError, IDXFormatError

REPO = Path(__file__).resolve().parents[1]
SUBSET = REPO / "tests" / "data" / "mnist-subset"
SUBSET_MD5 = mnist.read_md5sums(SUBSET / "MD5SUMS")
FULL = Path(os.environ.get("AVB_ZOO_FULL_MNIST", REPO.parent / "shared" / "data" / "mnist"))
HAVE_FULL = all((FULL / name).is_file() for name in mnist.MNIST_MD5)
needs_full = pytest.mark.skipif(not HAVE_FULL, reason=f"full MNIST not found at {FULL} (set AVB_ZOO_FULL_MNIST)")


# ----------------------------------------------------------------------------------------------------- IDX


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", ["u1", "i1", "i2", "i4", "f4", "f8"])
def test_idx_round_trip(tmp_path: Path, name: str, dtype: str) -> None:
    rng = np.random.default_rng(0)
    array = (rng.normal(size=(3, 5, 7)) * 100).astype(dtype)
    write_idx(tmp_path / name, array)
    back = read_idx(tmp_path / name)
    assert back.dtype == np.dtype(dtype) and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable
    assert os.listdir(tmp_path) == [name]  # no temp file left behind


def test_idx_gzip_detected_by_magic_not_suffix(tmp_path: Path) -> None:
    array = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    write_idx(tmp_path / "x.gz", array)
    (tmp_path / "x.gz").rename(tmp_path / "renamed.idx")
    np.testing.assert_array_equal(read_idx(tmp_path / "renamed.idx"), array)
    write_idx(tmp_path / "raw", array)
    (tmp_path / "raw").rename(tmp_path / "raw.gz")  # raw bytes despite the suffix
    np.testing.assert_array_equal(read_idx(tmp_path / "raw.gz"), array)


def test_idx_gzip_is_reproducible(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    write_idx(tmp_path / "a.gz", array)
    write_idx(tmp_path / "b.gz", array)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


def _raw_idx(tmp_path: Path) -> bytes:
    write_idx(tmp_path / "ok.idx", np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    return (tmp_path / "ok.idx").read_bytes()


@pytest.mark.parametrize("compress", [False, True])
def test_idx_wrong_magic(tmp_path: Path, compress: bool) -> None:
    data = b"\x01\x00" + _raw_idx(tmp_path)[2:]
    bad = tmp_path / "bad.idx"
    bad.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match=r"bad\.idx.*magic"):
        read_idx(bad)


def test_idx_unknown_type_code(tmp_path: Path) -> None:
    data = _raw_idx(tmp_path)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(data[:2] + b"\x07" + data[3:])
    with pytest.raises(IDXFormatError, match=r"bad\.idx.*type code 0x07"):
        read_idx(bad)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated(tmp_path: Path, compress: bool) -> None:
    data = _raw_idx(tmp_path)[:-5]
    bad = tmp_path / "short.idx"
    bad.write_bytes(gzip.compress(data) if compress else data)
    expected, actual = 4 + 3 * 4 + 24, 4 + 3 * 4 + 24 - 5
    with pytest.raises(IDXFormatError, match=rf"short\.idx: truncated.*needs {expected} bytes.*has {actual}"):
        read_idx(bad)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_trailing_bytes(tmp_path: Path, compress: bool) -> None:
    data = _raw_idx(tmp_path) + b"\x00\x01\x02"
    bad = tmp_path / "long.idx"
    bad.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(IDXFormatError, match=r"long\.idx: trailing bytes.*needs 40 bytes.*has 43"):
        read_idx(bad)


def test_idx_truncated_gzip_stream(tmp_path: Path) -> None:
    raw = gzip.compress(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    bad = tmp_path / "cut.gz"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IDXFormatError, match=r"cut\.gz.*gzip"):
        read_idx(bad)


def test_idx_truncated_header(tmp_path: Path) -> None:
    bad = tmp_path / "hdr.idx"
    bad.write_bytes(b"\x00\x00\x08\x03\x00\x00")
    with pytest.raises(IDXFormatError, match=r"hdr\.idx.*header"):
        read_idx(bad)


# ---------------------------------------------------------------------------------------- committed subset


def test_subset_checksums_match_md5sums() -> None:
    assert sorted(mnist.verify_mnist(SUBSET, SUBSET_MD5)) == sorted(mnist.MNIST_MD5)


def test_subset_shapes_and_small_data_split() -> None:
    test = mnist.load_mnist(SUBSET, "test")
    assert test.shape == (500, 784) and test.dtype == torch.uint8
    valid, train = mnist.load_mnist(SUBSET, "valid"), mnist.load_mnist(SUBSET, "train")
    assert valid.shape == (50, 784) and train.shape == (550, 784)  # 600 images: valid = first 600 // 12
    whole = torch.from_numpy(read_idx(SUBSET / mnist.TRAIN_IMAGES).reshape(600, 784))
    assert torch.equal(torch.cat([valid, train]), whole)
    for split, n in [("train", 550), ("valid", 50), ("test", 500)]:
        labels = mnist.load_mnist_labels(SUBSET, split)
        assert labels.shape == (n,) and labels.dtype == torch.int64
        assert int(labels.min()) >= 0 and int(labels.max()) <= 9


@pytest.mark.parametrize(("n", "valid"), [(60000, 5000), (10000, 5000), (5001, 5000), (5000, 416), (600, 50)])
def test_split_rule(n: int, valid: int) -> None:
    assert mnist._split_sizes(n) == (valid, n - valid)


@needs_full
def test_subset_equals_the_start_of_full_mnist() -> None:
    full_test = read_idx(FULL / mnist.TEST_IMAGES)
    sub_test = read_idx(SUBSET / mnist.TEST_IMAGES)
    np.testing.assert_array_equal(sub_test[0], full_test[0])
    np.testing.assert_array_equal(sub_test, full_test[:500])
    np.testing.assert_array_equal(read_idx(SUBSET / mnist.TEST_LABELS), read_idx(FULL / mnist.TEST_LABELS)[:500])
    np.testing.assert_array_equal(read_idx(SUBSET / mnist.TRAIN_IMAGES), read_idx(FULL / mnist.TRAIN_IMAGES)[:600])


def test_md5_mismatch_raises_checksum_error() -> None:
    # the subset is not the published MNIST, so the canonical sums must reject it
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz: md5"):
        mnist.verify_mnist(SUBSET, {mnist.TEST_IMAGES: mnist.MNIST_MD5[mnist.TEST_IMAGES]})
    with pytest.raises(ChecksumError):
        mnist.load_mnist(SUBSET, "test", verify=True)


# ----------------------------------------------------------------------------------------------- full MNIST


@needs_full
def test_full_mnist_splits() -> None:
    assert sorted(mnist.verify_mnist(FULL)) == sorted(mnist.MNIST_MD5)
    sizes = {split: mnist.load_mnist(FULL, split, verify=True).shape for split in mnist.SPLITS}
    assert sizes == {"train": (55000, 784), "valid": (5000, 784), "test": (10000, 784)}
    labels = {split: mnist.load_mnist_labels(FULL, split).shape[0] for split in mnist.SPLITS}
    assert labels == {"train": 55000, "valid": 5000, "test": 10000}
    whole = read_idx(FULL / mnist.TRAIN_IMAGES).reshape(60000, 784)
    np.testing.assert_array_equal(mnist.load_mnist(FULL, "valid").numpy(), whole[:5000])


# ------------------------------------------------------------------------------------------- missing data


def test_missing_folder_error_names_folder_and_files(tmp_path: Path) -> None:
    root = tmp_path / "no-such-folder"
    with pytest.raises(DataError) as info:
        mnist.load_mnist(root, "train")
    msg = str(info.value)
    assert str(root) in msg and mnist.TRAIN_IMAGES in msg and "AVB_ZOO_DATA" in msg
    assert f"avb-zoo data download mnist --dir {root}" in msg
    assert "\n" not in msg


def test_missing_files_error_lists_them(tmp_path: Path) -> None:
    shutil.copy(SUBSET / mnist.TRAIN_IMAGES, tmp_path)
    assert mnist.load_mnist(tmp_path, "valid").shape == (50, 784)
    with pytest.raises(DataError, match=rf"{tmp_path}.*t10k-labels-idx1-ubyte\.gz"):
        mnist.load_mnist_labels(tmp_path, "test")


def test_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown MNIST split 'validation'"):
        mnist.load_mnist(SUBSET, "validation")


def test_resolve_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVB_ZOO_DATA", str(tmp_path / "env"))
    assert mnist.resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"
    assert mnist.resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("AVB_ZOO_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert mnist.resolve_data_dir() == tmp_path / "xdg" / "avb-zoo" / "mnist"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert mnist.resolve_data_dir() == Path.home() / ".cache" / "avb-zoo" / "mnist"


def test_env_var_is_used_by_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AVB_ZOO_DATA", str(SUBSET))
    assert mnist.load_mnist(split="test").shape == (500, 784)


# ---------------------------------------------------------------------------------------------- download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def serve(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """serve(folder) -> URL of a local HTTP mirror of that folder (stopped after the test)."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    servers = []

    def start(folder: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _dead_mirror() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there any more: connection refused


def test_download_from_local_mirror(tmp_path: Path, serve) -> None:
    url = serve(SUBSET)
    root = tmp_path / "cache" / "mnist"
    assert mnist.download_mnist(root, mirrors=[url], timeout=5, files=SUBSET_MD5) == root
    assert sorted(os.listdir(root)) == sorted(SUBSET_MD5)  # all files, no temp files
    assert sorted(mnist.verify_mnist(root, SUBSET_MD5)) == sorted(SUBSET_MD5)
    assert mnist.load_mnist(root, "test").shape == (500, 784)
    # present and valid files are not fetched again: a mirror that has nothing still succeeds
    mnist.download_mnist(root, mirrors=[serve(tmp_path / "cache")], timeout=5, files=SUBSET_MD5)


def test_download_falls_back_to_next_mirror(tmp_path: Path, serve) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    mirrors = [_dead_mirror(), serve(empty), serve(SUBSET)]  # refused, then 404, then good
    files = {mnist.TEST_LABELS: SUBSET_MD5[mnist.TEST_LABELS]}
    mnist.download_mnist(tmp_path / "root", mirrors=mirrors, timeout=5, files=files)
    assert os.listdir(tmp_path / "root") == [mnist.TEST_LABELS]


def test_download_wrong_bytes_removed(tmp_path: Path, serve) -> None:
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    data = bytearray((SUBSET / mnist.TEST_IMAGES).read_bytes())
    data[100] ^= 0xFF
    (bad / mnist.TEST_IMAGES).write_bytes(bytes(data))
    root = tmp_path / "root"
    with pytest.raises(ChecksumError, match=r"t10k-images-idx3-ubyte\.gz.*md5") as info:
        mnist.download_mnist(
            root, mirrors=[serve(bad)], timeout=5, files={mnist.TEST_IMAGES: SUBSET_MD5[mnist.TEST_IMAGES]}
        )
    assert "nothing was kept" in str(info.value)
    assert not root.exists()  # neither the bad file nor a partial temp file, nor the folder the download made


def test_download_wrong_bytes_keep_previous_file(tmp_path: Path, serve) -> None:
    bad = tmp_path / "bad-mirror"
    bad.mkdir()
    (bad / mnist.TEST_LABELS).write_bytes(b"not mnist")
    root = tmp_path / "root"
    root.mkdir()
    (root / mnist.TEST_LABELS).write_bytes(b"stale")  # fails its md5, so a download is attempted
    with pytest.raises(ChecksumError):
        mnist.download_mnist(
            root, mirrors=[serve(bad)], timeout=5, files={mnist.TEST_LABELS: SUBSET_MD5[mnist.TEST_LABELS]}
        )
    assert os.listdir(root) == [mnist.TEST_LABELS] and (root / mnist.TEST_LABELS).read_bytes() == b"stale"


def test_download_all_mirrors_unreachable(tmp_path: Path, serve) -> None:
    mirrors = [_dead_mirror(), _dead_mirror()]
    with pytest.raises(DataError) as info:
        mnist.download_mnist(tmp_path, mirrors=mirrors, timeout=5, files={mnist.TRAIN_LABELS: "0" * 32})
    msg = str(info.value)
    assert not isinstance(info.value, ChecksumError)
    assert mnist.TRAIN_LABELS in msg and all(m in msg for m in mirrors) and "AVB_ZOO_DATA" in msg
    assert os.listdir(tmp_path) == []


@needs_full
def test_load_with_download(tmp_path: Path, serve, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MIRRORS", (serve(FULL),))
    images = mnist.load_mnist(tmp_path, "test", download=True, verify=True)
    assert images.shape == (10000, 784)
    assert os.listdir(tmp_path) == [mnist.TEST_IMAGES]  # only what the split needs


# -------------------------------------------------------------------------------------------- binarisation


def test_binarize_deterministic_and_binary() -> None:
    images = mnist.load_mnist(SUBSET, "test")[:16]
    a = mnist.binarize(images, torch.Generator().manual_seed(3))
    b = mnist.binarize(images, torch.Generator().manual_seed(3))
    c = mnist.binarize(images, torch.Generator().manual_seed(4))
    assert a.dtype == torch.float32 and a.shape == images.shape and a.device == images.device
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0}
    assert bool((a[images == 255] == 1).all())


def test_binarize_mean_matches_intensity() -> None:
    # every pixel value 0..255, K independent draws each: the mean of K Bernoulli(p) has standard error
    # sqrt(p(1-p)/K); 5 sigma bounds each of the 256 means (plus 1/K for the 2**-24 edge of p = 0)
    k = 20000
    values = torch.arange(256, dtype=torch.uint8)
    draws = mnist.binarize(values.expand(k, 256), torch.Generator().manual_seed(0))
    mean = draws.double().mean(0)
    p = values.double() / 255
    tol = 5 * torch.sqrt(p * (1 - p) / k) + 1 / k
    assert bool(((mean - p).abs() <= tol).all()), float(((mean - p).abs() / tol).max())


def test_binarize_float_input() -> None:
    x = torch.tensor([[0.0, 1.0, 0.5]])
    out = mnist.binarize(x, torch.Generator().manual_seed(0))
    assert out[0, 1] == 1 and out.dtype == torch.float32


def test_check_images() -> None:
    ok = torch.linspace(0, 1, 784).repeat(4, 1)
    assert torch.equal(mnist.check_images(ok, dim=784), ok)
    mnist.check_images(np.zeros((2, 784), dtype=np.uint8), dim=784)
    bad = ok.clone()
    bad[0, 0], bad[1, 1] = float("nan"), float("inf")
    with pytest.raises(DataError, match=r"my\.npy: 1 NaN and 1 infinite"):
        mnist.check_images(bad, name="my.npy")
    with pytest.raises(DataError, match=r"\[0, 1\].*max 255"):
        mnist.check_images(ok * 255)
    with pytest.raises(DataError, match="min -0.5"):
        mnist.check_images(ok - 0.5)
    with pytest.raises(DataError, match=r"shape \[N, 784\]"):
        mnist.check_images(torch.rand(4, 28, 28), dim=784)


# ----------------------------------------------------------------------------------------------- toy data


def test_toy_points_are_one_hot() -> None:
    assert torch.equal(toy.TOY_POINTS, torch.eye(4))
    x = toy.sample_toy(1000, torch.Generator().manual_seed(0))
    assert x.shape == (1000, 4) and x.dtype == torch.float32
    assert torch.equal(x.sum(1), torch.ones(1000)) and set(x.unique().tolist()) == {0.0, 1.0}


def test_toy_uniform_chi_square() -> None:
    n = 40000
    x = toy.sample_toy(n, torch.Generator().manual_seed(1))
    counts = x.sum(0).double()
    chi2 = float(((counts - n / 4) ** 2 / (n / 4)).sum())
    assert chi2 < 21.11  # chi-square, 3 dof, upper 1e-4 quantile
    assert torch.equal(x, toy.sample_toy(n, torch.Generator().manual_seed(1)))


# ----------------------------------------------------------------------------------------- Eight Schools


def _ref_log_joint(z: np.ndarray) -> float:
    """Independent by-hand log p(y, mu, tau, theta_tilde) + log|d tau / d log_tau|."""

    def normal(x: float, m: float, s: float) -> float:
        return -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)

    mu, log_tau, eta = float(z[0]), float(z[1]), [float(v) for v in z[2:]]
    tau = math.exp(log_tau)
    half_cauchy = math.log(2) - math.log(math.pi * 5) - math.log1p((tau / 5) ** 2)
    total = normal(mu, 0, 5) + half_cauchy + log_tau
    for y, s, e in zip(eight_schools.Y, eight_schools.SIGMA, eta, strict=True):
        total += normal(e, 0, 1) + normal(y, mu + tau * e, s)
    return total


_POINTS = np.array(
    [
        [0.0] * 10,
        [4.4, 1.2, 0.3, -0.1, -0.5, 0.2, -0.3, -0.2, 0.6, 0.1],
        [-3.0, -2.5, 1.5, -1.0, 0.0, 2.0, -0.7, 0.4, 1.1, -1.9],
        [10.0, 3.0, 0.9, 0.0, -1.2, 0.3, -0.8, -0.4, 1.0, 0.5],
    ]
)


def test_eight_schools_log_joint_matches_by_hand() -> None:
    z = torch.tensor(_POINTS, dtype=torch.float64)
    got = eight_schools.log_joint(z)
    assert got.shape == (4,) and got.dtype == torch.float64
    ref = torch.tensor([_ref_log_joint(p) for p in _POINTS], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-10)
    got32 = eight_schools.log_joint(z.float())
    assert got32.dtype == torch.float32
    torch.testing.assert_close(got32.double(), ref, rtol=1e-5, atol=1e-4)
    module = eight_schools.EightSchoolsLikelihood()
    assert list(module.parameters()) == [] and module.state_dict() == {}
    torch.testing.assert_close(module(z), got)
    torch.testing.assert_close(module(z.float()), got32)
    assert eight_schools.log_joint(z.reshape(2, 2, 10)).shape == (2, 2)


def test_eight_schools_gradient_matches_finite_differences() -> None:
    h = 1e-6
    for point in _POINTS:
        z = torch.tensor(point, dtype=torch.float64, requires_grad=True)
        (grad,) = torch.autograd.grad(eight_schools.log_joint(z.unsqueeze(0)).sum(), z)
        fd = np.empty(10)
        for i in range(10):
            up, down = point.copy(), point.copy()
            up[i] += h
            down[i] -= h
            fd[i] = (_ref_log_joint(up) - _ref_log_joint(down)) / (2 * h)
        np.testing.assert_allclose(grad.numpy(), fd, rtol=1e-6, atol=1e-5)


def test_eight_schools_constrain_and_stability() -> None:
    z = torch.tensor(_POINTS[1:2], dtype=torch.float64)
    c = eight_schools.constrain(z)
    assert c["mu"].shape == (1,) and c["tau"].shape == (1,) and c["theta"].shape == (1, 8)
    torch.testing.assert_close(c["tau"], torch.exp(z[:, 1]))
    torch.testing.assert_close(c["theta"], z[:, :1] + torch.exp(z[:, 1:2]) * z[:, 2:])
    big = torch.zeros(1, 10, dtype=torch.float64)
    big[0, 1] = 300.0  # tau = e^300: (tau/5)^2 would overflow; the softplus form does not
    big[0, 2:] = 0.0
    assert torch.isfinite(eight_schools.log_joint(big)).all()
    with pytest.raises(ValueError, match=r"\[\.\.\., 10\]"):
        eight_schools.log_joint(torch.zeros(3, 9))


def _ref_paper_log_joint(z: np.ndarray) -> float:
    """By hand, the authors' notebook model: N(0, 1) priors on mu, tau and eta_j, y / 10 and its sigma."""

    def normal(x: float, m: float, s: float) -> float:
        return -0.5 * ((x - m) / s) ** 2 - math.log(s) - 0.5 * math.log(2 * math.pi)

    y = [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0]
    sigma = [0.8, 0.5, 0.8, 0.6, 0.5, 0.6, 0.5, 0.4]
    mu, tau = float(z[0]), float(z[1])
    total = normal(mu, 0, 1) + normal(tau, 0, 1)
    for yj, s, e in zip(y, sigma, z[2:], strict=True):
        total += normal(float(e), 0, 1) + normal(yj / 10, mu + tau * float(e), s)
    return total


def test_eight_schools_paper_variant_matches_by_hand_and_is_symmetric_in_the_sign_of_tau() -> None:
    z = torch.tensor(_POINTS / 3, dtype=torch.float64)
    got = eight_schools.variant_log_joint(z, "paper")
    ref = torch.tensor([_ref_paper_log_joint(p) for p in z.numpy()], dtype=torch.float64)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-10)
    mirrored = z.clone()
    mirrored[:, 1:] *= -1  # (tau, eta) -> (-tau, -eta) leaves every theta_j = mu + tau eta_j as it was
    torch.testing.assert_close(eight_schools.variant_log_joint(mirrored, "paper"), got, rtol=0, atol=1e-12)
    module = eight_schools.EightSchoolsLikelihood("paper")
    torch.testing.assert_close(module(z), got)
    assert eight_schools.VARIANTS["paper"].param_names[:3] == ("mu", "tau", "eta_1")
    # the posteriordb variant stays what it was
    torch.testing.assert_close(eight_schools.variant_log_joint(z, "posteriordb"), eight_schools.log_joint(z))


def test_eight_schools_unknown_variant_is_refused_by_name() -> None:
    from avb_zoo.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown Eight Schools variant 'centred'; known: posteriordb, paper"):
        eight_schools.EightSchoolsLikelihood("centred")
