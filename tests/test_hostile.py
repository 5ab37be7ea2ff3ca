"""The hostile suite: bad model files, ONNX graphs, runtime inputs, ids and revisions, Hub faults, pushes,
training and evaluation inputs, each run through the command.

Every case must end with a non-zero exit, exactly one error line and no traceback; and nothing may be written,
changed or deleted in its folder tree (a temporary HOME, working folder, model folder and files outside them)
except in the output folder and the Hugging Face cache. One local Hub serves every case that needs one; a few
cases run the command as a real subprocess.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from budget import budget
from click.testing import CliRunner
from hub_fixtures import TEST_TOKEN
from hub_server import HubServer
from safetensors.torch import load_file, save_file

import avb_zoo.catalogue.registry as reg

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "models" / "toy-avb"
REPO = "zoo/toy"
MODEL_ID = "hostile/toy-v1"  # registered per case: the toy model on the local Hub, not shipped (no fallback)
DEEP = "[" * 50_000 + "]" * 50_000
LONG = "x" * 100_000
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


# ------------------------------------------------------------------------------------------ the harness
@dataclass
class Ctx:
    """One case's folder tree: HOME, working folder, output folder, HF cache, files outside, the local Hub."""

    root: Path
    hub: HubServer
    monkeypatch: pytest.MonkeyPatch
    registered: bool = False

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def cache(self) -> Path:
        return self.root / "hf" / "hub"

    @property
    def outside(self) -> Path:
        return self.root / "outside"

    def toy(self) -> Path:
        """A private copy of the shipped toy model (config.json, weights, verified graphs)."""
        folder = self.root / "model"
        if not folder.exists():
            shutil.copytree(TOY, folder)
        return folder

    def config(self, **changes: object) -> Path:
        folder = self.toy()
        config = json.loads((folder / "config.json").read_text())
        config.update(changes)
        (folder / "config.json").write_text(json.dumps(config))
        return folder

    def weights(self, change: Callable[[dict[str, torch.Tensor]], None]) -> Path:
        folder = self.toy()
        tensors = load_file(folder / "model.safetensors")
        change(tensors)
        save_file(tensors, folder / "model.safetensors")
        return folder

    def npy(self, array: np.ndarray, name: str = "x.npy") -> Path:
        path = self.root / "cwd" / name
        np.save(path, array, allow_pickle=array.dtype.hasobject)
        return path

    def write(self, rel: str, data: bytes | str) -> Path:
        if rel.startswith("model/"):
            self.toy()  # the model's other files first
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def register(self, files: dict[str, str] | None = None) -> str:
        """``hostile/toy-v1``: the toy model on the local Hub, with the catalogue's hashes (registered once)."""
        if self.registered and files is None:
            return MODEL_ID
        self.registered = True
        self.monkeypatch.setattr(reg, "registry", dict(reg.registry))
        self.monkeypatch.setattr(reg, "_plugins_loaded", True)
        config = json.loads((TOY / "config.json").read_text())
        hashes = dict(reg.spec("toy-avb").files) if files is None else files
        reg.register(MODEL_ID, kwargs=config, hub_repo_id=REPO, hub_revision="main", files=hashes)
        return MODEL_ID

    def pulled(self) -> Path:
        """The toy model pulled into this case's cache (its snapshot folder)."""
        from avb_zoo.hub.resolve import pull

        return pull(self.register(), cache_dir=self.cache)


@dataclass
class Case:
    id: str
    build: Callable[[Ctx], list[object]]
    subprocess: bool = False
    usage: bool = False  # a usage error: click's own message and exit status 2
    xfail: str | None = None


CASES: list[Case] = []


def case(id: str, *, subprocess: bool = False, usage: bool = False, xfail: str | None = None):  # noqa: A002
    def add(build: Callable[[Ctx], list[object]]) -> Callable[[Ctx], list[object]]:
        CASES.append(Case(id, build, subprocess, usage, xfail))
        return build

    return add


def snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` (links not followed): kind, size, mtime and link target."""
    entries: dict[str, tuple] = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            info = path.lstat()
            target = os.readlink(path) if path.is_symlink() else None
            kind = "link" if target is not None else ("dir" if path.is_dir() else "file")
            entries[path.relative_to(root).as_posix()] = (kind, 0 if kind == "dir" else info.st_size, target) + (
                (info.st_mtime_ns,) if kind == "file" else ()
            )
    return entries


def changes_outside(before: dict[str, tuple], after: dict[str, tuple], allowed: tuple[str, ...]) -> list[str]:
    def free(rel: str) -> bool:
        return any(rel == a or rel.startswith(a + "/") for a in allowed)

    created = [f"written {rel}" for rel in after if rel not in before and not free(rel)]
    deleted = [f"deleted {rel}" for rel in before if rel not in after and not free(rel)]
    changed = [f"changed {rel}" for rel in after if rel in before and after[rel] != before[rel] and not free(rel)]
    return created + deleted + changed


def error_lines(stderr: str) -> list[str]:
    """The lines a failure printed, without the notes and skip reports that may come before it."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith(("note:", "skipped "))]


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    """One local Hub for the module, holding the toy model in ``zoo/toy``."""
    from huggingface_hub import HfApi

    server = HubServer(tokens={TEST_TOKEN})
    endpoint = server.start()
    try:
        from avb_zoo.hub.client import hub_settings as _hub_settings

        api = HfApi(endpoint=endpoint, token=TEST_TOKEN)
        with _hub_settings(endpoint=endpoint):  # plain LFS uploads: the test Hub has no Xet storage
            api.create_repo(REPO)
            api.upload_folder(repo_id=REPO, folder_path=str(TOY))
        yield server
    finally:
        server.stop()


def _isolate(ctx: Ctx, endpoint: str) -> dict[str, str]:
    """HOME, working folder and the HF settings of one case; returns the environment for a subprocess."""
    import huggingface_hub.constants as constants

    for sub in ("home", "cwd", "out", "hf", "outside"):
        (ctx.root / sub).mkdir()
    (ctx.outside / "victim.txt").write_text("precious, and not the zoo's")
    env = {
        "HOME": str(ctx.root / "home"),
        "XDG_CACHE_HOME": str(ctx.root / "home" / ".cache"),
        "HF_HOME": str(ctx.root / "hf"),
        "HF_HUB_CACHE": str(ctx.cache),
        "HF_ENDPOINT": endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_ETAG_TIMEOUT": "2",
        "HF_HUB_DOWNLOAD_TIMEOUT": "1",
        "AVB_ZOO_DATA": str(ctx.root / "cwd" / "no-data"),
    }
    mp = ctx.monkeypatch
    for name, value in env.items():
        mp.setenv(name, value)
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        mp.delenv(name, raising=False)
    patched = {
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_XET": True,
        "HF_HOME": str(ctx.root / "hf"),
        "HF_HUB_CACHE": str(ctx.cache),
        "HF_TOKEN_PATH": str(ctx.root / "hf" / "token"),
        "HF_STORED_TOKENS_PATH": str(ctx.root / "hf" / "stored_tokens"),
        "ENDPOINT": endpoint,
        "HF_HUB_DOWNLOAD_TIMEOUT": 1,
        "HF_HUB_ETAG_TIMEOUT": 2,
        "HUGGINGFACE_CO_URL_TEMPLATE": endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    }
    for name, value in patched.items():
        mp.setattr(constants, name, value, raising=False)
    mp.chdir(ctx.root / "cwd")
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _reset(server: HubServer) -> None:
    with server._lock:
        server.failing = None
        server.drop_always.clear()
        server.drop_once.clear()
        server.stalled.clear()
        server.corrupted.clear()


def _params() -> list:
    return [
        pytest.param(c, id=c.id, marks=[pytest.mark.xfail(reason=c.xfail, strict=True)] if c.xfail else [])
        for c in CASES
    ]


def run_case(c: Case, ctx: Ctx, env: dict[str, str]) -> tuple[int, str, str, BaseException | None]:
    argv = [str(a) for a in c.build(ctx)]
    if c.subprocess:
        done = subprocess.run(
            [sys.executable, "-m", "avb_zoo.cli", *argv], env=env, capture_output=True, text=True, timeout=budget(120)
        )
        return done.returncode, done.stdout, done.stderr, None
    from avb_zoo.cli import main

    result = CliRunner().invoke(main, argv)
    exception = None if isinstance(result.exception, SystemExit | None) else result.exception
    return result.exit_code, result.stdout, result.stderr, exception


def check_case(c: Case, tmp_path: Path, hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _reset(hub)
    ctx = Ctx(tmp_path, hub, monkeypatch)
    env = _isolate(ctx, hub.endpoint)
    before: dict[str, tuple] | None = None
    # the case builds its inputs first; the tree is compared from the moment the command starts
    build = c.build

    def snap_then_build(ctx: Ctx) -> list[object]:
        nonlocal before
        argv = build(ctx)
        before = snapshot(tmp_path)
        return argv

    code, stdout, stderr, exception = run_case(Case(c.id, snap_then_build, c.subprocess, c.usage), ctx, env)
    after = snapshot(tmp_path)
    assert exception is None, f"unhandled {type(exception).__name__}: {exception}"
    assert "Traceback" not in stdout + stderr, stderr[-2000:]
    lines = error_lines(stderr)
    print(f"[{c.id}] {lines[-1] if lines else '(no error line)'}")  # shown with -s: what each case said
    if c.usage:
        assert code == 2 and sum(line.startswith("Error: ") for line in lines) == 1, stderr
    else:
        assert code == 1, (code, stdout[-500:], stderr[-1000:])
        assert len(lines) == 1 and lines[0].startswith("error: "), stderr
        assert len(lines[0]) < 1000, f"an error line of {len(lines[0]):,} characters"
    assert before is not None
    assert changes_outside(before, after, ("out", "hf")) == []


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The cases are defined below the test: parametrize once the whole module is read."""
    if "c" in metafunc.fixturenames:
        metafunc.parametrize("c", _params())


def test_hostile(c: Case, tmp_path: Path, hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    check_case(c, tmp_path, hub, monkeypatch)


def test_the_suite_has_at_least_100_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 100, len(CASES)


# ------------------------------------------------------------------------------------ model files
CONFIGS: dict[str, Callable[[Ctx], Path]] = {
    "missing": lambda ctx: (ctx.toy() / "config.json").unlink() or ctx.toy(),
    "not-json": lambda ctx: ctx.write("model/config.json", "{not json") and ctx.toy(),
    "a-list": lambda ctx: ctx.write("model/config.json", "[1, 2]") and ctx.toy(),
    "nested-50000": lambda ctx: ctx.write("model/config.json", DEEP) and ctx.toy(),
    "huge": lambda ctx: ctx.write("model/config.json", '{"pad": "' + "x" * (2 << 20) + '"}') and ctx.toy(),
    "dev-zero": lambda ctx: (
        (ctx.toy() / "config.json").unlink() or (ctx.toy() / "config.json").symlink_to("/dev/zero") or ctx.toy()
    ),
    "a-folder": lambda ctx: (ctx.toy() / "config.json").unlink() or (ctx.toy() / "config.json").mkdir() or ctx.toy(),
    "unknown-key": lambda ctx: ctx.config(image_shap=[1, 2, 2]),
    "latent-1e9": lambda ctx: ctx.config(latent_dim=10**9),
    "x-dim-negative": lambda ctx: ctx.config(x_dim=-4),
    "x-dim-string": lambda ctx: ctx.config(x_dim="4"),
    "latent-bool": lambda ctx: ctx.config(latent_dim=True),
    "method-unknown": lambda ctx: ctx.config(method="gan"),
    "format-99": lambda ctx: ctx.config(format_version=99),
    "encoder-unknown": lambda ctx: ctx.config(encoder={"name": "transformer"}),
    "encoder-typo": lambda ctx: ctx.config(encoder={"name": "concat-mlp", "noise_dim": 64, "hiden": [64]}),
    "image-shape-wrong": lambda ctx: ctx.config(image_shape=[1, 3, 3]),
    "hidden-nan": lambda ctx: ctx.config(decoder={"name": "bernoulli", "hidden": [float("nan")]}),
    "hidden-huge": lambda ctx: ctx.config(decoder={"name": "bernoulli", "hidden": [1 << 20, 1 << 20]}),
}
for _name, _make in CONFIGS.items():
    case(f"config-{_name}-export")(lambda ctx, make=_make: ["export", make(ctx), "--out", ctx.out / "e"])
    case(f"config-{_name}-sample")(lambda ctx, make=_make: ["sample", make(ctx), "--out", ctx.out / "g.png"])


def _first(tensors: dict[str, torch.Tensor]) -> str:
    return sorted(tensors)[0]


def _set(tensors: dict[str, torch.Tensor], value: float) -> None:
    tensors[_first(tensors)].view(-1)[0] = value


def _raw_weights(ctx: Ctx, data: bytes) -> Path:
    return ctx.write("model/model.safetensors", data).parent


WEIGHTS: dict[str, Callable[[Ctx], Path]] = {
    "missing": lambda ctx: (ctx.toy() / "model.safetensors").unlink() or ctx.toy(),
    "truncated": lambda ctx: _raw_weights(ctx, (TOY / "model.safetensors").read_bytes()[:5000]),
    "header-huge": lambda ctx: _raw_weights(ctx, (1 << 62).to_bytes(8, "little") + b"{}"),
    "random-bytes": lambda ctx: _raw_weights(ctx, os.urandom(4096)),
    "pickle": lambda ctx: _raw_weights(ctx, b"\x80\x04\x95" + os.urandom(64)),
    "nested-header": lambda ctx: _raw_weights(ctx, len(DEEP).to_bytes(8, "little") + DEEP.encode()),
    "dev-zero": lambda ctx: (
        (ctx.toy() / "model.safetensors").unlink()
        or (ctx.toy() / "model.safetensors").symlink_to("/dev/zero")
        or ctx.toy()
    ),
    "float16": lambda ctx: ctx.weights(lambda t: t.update({_first(t): t[_first(t)].half()})),
    "int64": lambda ctx: ctx.weights(lambda t: t.update({_first(t): t[_first(t)].long()})),
    "nan": lambda ctx: ctx.weights(lambda t: _set(t, float("nan"))),
    "inf": lambda ctx: ctx.weights(lambda t: _set(t, float("inf"))),
    "missing-tensor": lambda ctx: ctx.weights(lambda t: t.pop(_first(t))),
    "extra-tensor": lambda ctx: ctx.weights(lambda t: t.update({"encoder.backdoor": torch.zeros(3)})),
    "misshaped": lambda ctx: ctx.weights(lambda t: t.update({_first(t): torch.zeros(7, 7)})),
}
for _name, _make in WEIGHTS.items():
    case(f"weights-{_name}-export")(lambda ctx, make=_make: ["export", make(ctx), "--out", ctx.out / "e"])
    case(f"weights-{_name}-push")(lambda ctx, make=_make: ["push", make(ctx), "--repo-id", "user/hostile"])


# ------------------------------------------------------------------------------------------ ONNX graphs
def _vouch(folder: Path, name: str) -> None:
    import hashlib

    path = folder / "onnx" / "verification.json"
    report = json.loads(path.read_text())
    report["graphs"][name]["sha256"] = hashlib.sha256((folder / "onnx" / f"{name}.onnx").read_bytes()).hexdigest()
    path.write_text(json.dumps(report))


def _graph(ctx: Ctx, data: bytes, vouch: bool, name: str = "sampler") -> Path:
    folder = ctx.toy()
    (folder / "onnx" / f"{name}.onnx").write_bytes(data)
    if vouch:
        _vouch(folder, name)
    return folder


def _random(op: str) -> Callable[[Ctx], Path]:
    def make(ctx: Ctx) -> Path:
        from test_hardening import with_random_op

        return _graph(ctx, with_random_op((TOY / "onnx" / "sampler.onnx").read_bytes(), op), vouch=True)

    return make


def _renamed_input(ctx: Ctx) -> Path:
    import onnx

    model = onnx.load(TOY / "onnx" / "sampler.onnx")
    old = model.graph.input[0].name
    model.graph.input[0].name = "latent"
    for node in model.graph.node:
        node.input[:] = ["latent" if i == old else i for i in node.input]
    return _graph(ctx, model.SerializeToString(), vouch=True)


def _report(ctx: Ctx, text: str) -> Path:
    return ctx.write("model/onnx/verification.json", text).parent.parent


GRAPH_CASES: dict[str, Callable[[Ctx], Path]] = {
    "missing": lambda ctx: (ctx.toy() / "onnx" / "sampler.onnx").unlink() or ctx.toy(),
    "garbage": lambda ctx: _graph(ctx, b"\x08\x07garbage", vouch=False),
    "garbage-vouched": lambda ctx: _graph(ctx, b"\x08\x07garbage", vouch=True),
    "empty-vouched": lambda ctx: _graph(ctx, b"", vouch=True),
    "truncated-vouched": lambda ctx: _graph(ctx, (TOY / "onnx" / "sampler.onnx").read_bytes()[:999], vouch=True),
    "decoder-in-its-place": lambda ctx: _graph(ctx, (TOY / "onnx" / "decoder.onnx").read_bytes(), vouch=False),
    "decoder-vouched": lambda ctx: _graph(ctx, (TOY / "onnx" / "decoder.onnx").read_bytes(), vouch=True),
    "random-uniform": _random("RandomUniformLike"),
    "random-normal": _random("RandomNormalLike"),
    "bernoulli": _random("Bernoulli"),
    "input-renamed": _renamed_input,
    "dev-zero": lambda ctx: (
        (ctx.toy() / "onnx" / "sampler.onnx").unlink()
        or (ctx.toy() / "onnx" / "sampler.onnx").symlink_to("/dev/zero")
        or ctx.toy()
    ),
    "report-missing": lambda ctx: (ctx.toy() / "onnx" / "verification.json").unlink() or ctx.toy(),
    "report-lying": lambda ctx: (
        ctx.toy() and _report(ctx, (TOY / "onnx" / "verification.json").read_text().replace("847862a0", "00000000"))
    ),
    "report-not-json": lambda ctx: ctx.toy() and _report(ctx, "{{{"),
    "report-nested": lambda ctx: ctx.toy() and _report(ctx, DEEP),
    "report-not-passed": lambda ctx: (
        ctx.toy()
        and _report(ctx, (TOY / "onnx" / "verification.json").read_text().replace('"passed": true', '"passed": false'))
    ),
    "report-no-graphs": lambda ctx: ctx.toy() and _report(ctx, '{"passed": true, "graphs": {}}'),
    "architecture-changed": lambda ctx: ctx.config(decoder={"name": "bernoulli", "hidden": [64, 64], "act": "elu"}),
}
for _name, _make in GRAPH_CASES.items():
    case(f"graph-{_name}-sample")(lambda ctx, make=_make: ["sample", make(ctx), "-n", "4", "--out", ctx.out / "g.png"])
case("graph-random-encode", subprocess=True)(
    lambda ctx: [
        "encode",
        _graph(
            ctx,
            __import__("test_hardening").with_random_op((TOY / "onnx" / "encoder.onnx").read_bytes()),
            vouch=True,
            name="encoder",
        ),
        ctx.npy(np.eye(4, dtype=np.float32)),
        "--out",
        ctx.out / "z.npy",
    ]
)


# ---------------------------------------------------------------------------------------- runtime inputs
def _npy_header(shape: tuple[int, ...], descr: str = "<f4", tail: int = 64) -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": descr, "fortran_order": False, "shape": shape})
    return header.getvalue() + bytes(tail)


def _png_header(ctx: Ctx, width: int, height: int) -> Path:
    """A PNG whose header declares width x height grey pixels, followed by a few bytes of data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(16))) + chunk(b"IEND", b"")
    return ctx.write("cwd/x.png", b"\x89PNG\r\n\x1a\n" + body)


def _jpeg_truncated(ctx: Ctx) -> Path:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    return ctx.write("cwd/x.jpg", data[: len(data) // 2])


def _encode(make_input: Callable[[Ctx], Path], *extra: object) -> Callable[[Ctx], list[object]]:
    return lambda ctx: ["encode", ctx.toy(), make_input(ctx), "--out", ctx.out / "z.npy", *extra]


INPUTS: dict[str, Callable[[Ctx], Path]] = {
    "missing": lambda ctx: ctx.root / "cwd" / "nothing.npy",
    "txt": lambda ctx: ctx.write("cwd/x.txt", "0 1 0 1"),
    "npy-garbage": lambda ctx: ctx.write("cwd/x.npy", b"not numpy at all"),
    "npy-objects": lambda ctx: ctx.npy(np.array([{"a": 1}, None], dtype=object)),
    "npy-petabytes": lambda ctx: ctx.write("cwd/x.npy", _npy_header((10**12, 4))),
    "npy-truncated": lambda ctx: ctx.write("cwd/x.npy", _npy_header((1000, 4))),
    "npy-header-too-long": lambda ctx: ctx.write("cwd/x.npy", b"\x93NUMPY\x01\x00\xff\xff" + b" " * 70000),
    "npy-wrong-shape": lambda ctx: ctx.npy(np.zeros((3, 5), np.float32)),
    "npy-one-dim": lambda ctx: ctx.npy(np.zeros(4, np.float32)),
    "npy-nan": lambda ctx: ctx.npy(np.full((2, 4), np.nan, np.float32)),
    "npy-inf": lambda ctx: ctx.npy(np.full((2, 4), np.inf, np.float64)),
    "npy-above-one": lambda ctx: ctx.npy(np.full((2, 4), 7.0, np.float32)),
    "npy-negative": lambda ctx: ctx.npy(np.full((2, 4), -0.5, np.float32)),
    "npy-int32": lambda ctx: ctx.npy(np.ones((2, 4), np.int32)),
    "npy-complex": lambda ctx: ctx.npy(np.ones((2, 4), np.complex64)),
    "npy-empty": lambda ctx: ctx.npy(np.zeros((0, 4), np.float32)),
    "npy-dev-zero": lambda ctx: (ctx.root / "cwd" / "z0.npy").symlink_to("/dev/zero") or ctx.root / "cwd" / "z0.npy",
    # a wrong size is converted now (grey models take any size, with a warning); a size beyond the limit is not
    "png-81m-pixels": lambda ctx: _png_header(ctx, 9000, 9000),
    "png-decompression-bomb": lambda ctx: _png_header(ctx, 100_000, 100_000),
    "png-garbage": lambda ctx: ctx.write("cwd/x.png", b"\x89PNG\r\n\x1a\n" + os.urandom(100)),
    # a JPEG named .png is read by its content now (Pillow); a JPEG cut short is still not an image
    "jpeg-truncated": _jpeg_truncated,
    "folder-without-png": lambda ctx: ctx.write("cwd/imgs/readme.txt", "none").parent,
}
for _name, _make in INPUTS.items():
    case(f"input-{_name}-encode")(_encode(_make))
case("input-npy-petabytes-subprocess", subprocess=True)(_encode(INPUTS["npy-petabytes"]))
case("input-samples-1e9")(_encode(lambda ctx: ctx.npy(np.eye(4, dtype=np.float32)), "--samples", 10**9))
case("input-out-not-npy")(lambda ctx: ["encode", ctx.toy(), ctx.npy(np.eye(4, dtype=np.float32)), "--out", "z.txt"])
case("input-out-a-folder")(
    lambda ctx: [
        "encode",
        ctx.toy(),
        ctx.npy(np.eye(4, dtype=np.float32)),
        "--out",
        ctx.write("out/d.npy/k", "").parent,
    ]
)
case("input-out-under-a-file")(
    lambda ctx: ["encode", ctx.toy(), ctx.npy(np.eye(4, dtype=np.float32)), "--out", ctx.write("out/f", "x") / "z.npy"]
)
case("input-moments-not-npz")(
    _encode(lambda ctx: ctx.npy(np.eye(4, dtype=np.float32)), "--moments", "m.npy"),
)
case("input-moments-without-graph")(
    _encode(lambda ctx: ctx.npy(np.eye(4, dtype=np.float32)), "--moments", "m.npz"),
)
case("input-samples-zero", usage=True)(_encode(lambda ctx: ctx.npy(np.eye(4, dtype=np.float32)), "--samples", 0))
case("sample-columns-1e9")(lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.png", "--columns", 10**9])
case("sample-columns-1e9-subprocess", subprocess=True)(
    lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.png", "--columns", 10**9]
)
case("sample-n-zero", usage=True)(lambda ctx: ["sample", ctx.toy(), "-n", 0, "--out", ctx.out / "g.png"])
case("sample-n-1e9", usage=True)(lambda ctx: ["sample", ctx.toy(), "-n", 10**9, "--out", ctx.out / "g.png"])
# .jpg is a format Pillow writes, so it is taken now; an extension no image format has is not
case("sample-out-unknown-format")(lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.xyz"])
case("sample-no-out-no-npy")(lambda ctx: ["sample", ctx.toy()])
case("sample-scale-33", usage=True)(lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.png", "--scale", 33])
case("sample-scaled-grid-too-big")(
    lambda ctx: ["sample", ctx.toy(), "-n", 65536, "--scale", 32, "--out", ctx.out / "g.png"]
)
case("sample-npy-wrong-suffix")(lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.png", "--npy", "s.txt"])
case("sample-provider-cuda")(lambda ctx: ["sample", ctx.toy(), "--out", ctx.out / "g.png", "--provider", "cuda"])
case("sample-a-file-not-a-folder")(lambda ctx: ["sample", TOY / "config.json", "--out", ctx.out / "g.png"])
case("sample-folder-without-config")(lambda ctx: ["sample", ctx.root / "cwd", "--out", ctx.out / "g.png"])
case("reconstruct-bad-input")(
    lambda ctx: ["reconstruct", ctx.toy(), ctx.npy(np.zeros((2, 9), np.float32)), "--out", ctx.out / "r.png"]
)


# ----------------------------------------------------------------------------------- ids and revisions
case("id-unknown-info")(lambda ctx: ["info", "no-such-model"])
case("id-long-info")(lambda ctx: ["info", LONG])
case("id-long-sample")(lambda ctx: ["sample", LONG, "--out", ctx.out / "g.png"])
case("id-long-subprocess", subprocess=True)(lambda ctx: ["info", "y" * 100_000])
case("id-dotdot-info")(lambda ctx: ["info", "../../etc/passwd"])
case("id-version-missing-pull")(lambda ctx: ["pull", "toy-avb-v99"])
case("id-namespace-missing-pull")(lambda ctx: ["pull", "acme/toy-avb-v1"])
case("id-newline-pull")(lambda ctx: ["pull", "toy-avb\nerror: forged"])
case("id-unknown-train")(lambda ctx: ["train", "no-such-recipe"])
case("id-unknown-eval")(lambda ctx: ["eval", "no-such-model-v1"])
case("id-export-without-out")(lambda ctx: ["export", "toy-avb"])
case("revision-dotdot-pull")(lambda ctx: ["pull", "toy-avb", "--revision", "../../etc"])
case("revision-absolute-pull")(lambda ctx: ["pull", "toy-avb", "--revision", "/etc/passwd"])
case("revision-long-pull")(lambda ctx: ["pull", "toy-avb", "--revision", LONG])
case("revision-unknown-pull")(lambda ctx: ["pull", ctx.register(), "--revision", "no-such-branch"])
case("hf-hub-dotdot-sample")(lambda ctx: ["sample", "hf-hub:zoo/../../toy", "--out", ctx.out / "g.png"])


# -------------------------------------------------------------------------------------------- Hub faults
def _pull(ctx: Ctx, *extra: object) -> list[object]:
    return ["pull", ctx.register(), "--quiet", *extra]


case("hub-401-bad-token")(lambda ctx: ctx.monkeypatch.setenv("HF_TOKEN", "hf_wrong") or _pull(ctx))
case("hub-404-repo")(
    lambda ctx: (
        ctx.register()
        and reg.register("hostile/gone-v1", kwargs=reg.spec(MODEL_ID).kwargs, hub_repo_id="zoo/gone", files={})
        and ["pull", "hostile/gone-v1"]
    )
)
case("hub-404-file")(
    lambda ctx: (
        ctx.register({**reg.spec("toy-avb").files, "onnx/absent.onnx": "0" * 64}) and ["pull", MODEL_ID, "--quiet"]
    )
)
case("hub-500")(lambda ctx: ctx.hub.fail_requests(500) or _pull(ctx))
case("hub-503-on-files")(lambda ctx: ctx.hub.fail_requests(503, "/resolve/") or _pull(ctx))
case("hub-403")(lambda ctx: ctx.hub.fail_requests(403) or _pull(ctx))
case("hub-unreachable")(lambda ctx: ctx.monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9") or _pull(ctx))
case("hub-cut-download")(
    lambda ctx: ctx.hub.drop_connection_always(REPO, "model.safetensors", 100) or _pull(ctx)  # type: ignore[func-returns-value]
)
case("hub-stalled-download")(lambda ctx: ctx.hub.stall_file(REPO, "model.safetensors", 4.0) or _pull(ctx))
case("hub-tampered-file")(lambda ctx: ctx.hub.corrupt_file(REPO, "model.safetensors") or _pull(ctx))
case("hub-tampered-file-sample")(
    lambda ctx: ctx.hub.corrupt_file(REPO, "onnx/sampler.onnx") or ["sample", ctx.register(), "--out", "../out/g.png"]
)


def _tampered_cache(ctx: Ctx) -> list[object]:
    snapshot_dir = ctx.pulled()
    blob = Path(os.path.realpath(snapshot_dir / "config.json"))
    blob.write_text(blob.read_text().replace("64", "65"))
    return _pull(ctx, "--offline")


def _cache_link_out(ctx: Ctx) -> list[object]:
    snapshot_dir = ctx.pulled()
    (snapshot_dir / "model.safetensors").unlink()
    (snapshot_dir / "model.safetensors").symlink_to(ctx.outside / "victim.txt")
    return _pull(ctx, "--offline")


def _cache_folder_out(ctx: Ctx) -> list[object]:
    snapshot_dir = ctx.pulled()
    shutil.copytree(snapshot_dir, ctx.outside / "snap", symlinks=False)
    (ctx.outside / "snap" / "model.safetensors").write_text("someone else's")
    shutil.rmtree(snapshot_dir)
    snapshot_dir.symlink_to(ctx.outside / "snap")
    return _pull(ctx, "--offline")


def _planted(ctx: Ctx) -> list[object]:
    snapshot_dir = ctx.pulled()
    (snapshot_dir / "onnx" / "moments.onnx").write_bytes((TOY / "onnx" / "encoder.onnx").read_bytes())
    return ["encode", MODEL_ID, ctx.npy(np.eye(4, dtype=np.float32)), "--out", "../out/z.npy", "--moments", "m.npz"]


def _cached_graph_swapped(ctx: Ctx) -> list[object]:
    snapshot_dir = ctx.pulled()
    graph = snapshot_dir / "onnx" / "sampler.onnx"
    graph.unlink()
    graph.write_bytes((TOY / "onnx" / "decoder.onnx").read_bytes())
    return ["sample", MODEL_ID, "--out", "../out/g.png"]


case("cache-tampered-offline")(_tampered_cache)
case("cache-link-out-offline")(_cache_link_out)
case("cache-folder-link-out-offline")(_cache_folder_out)
case("cache-planted-graph-encode")(_planted)
case("cache-swapped-graph-sample")(_cached_graph_swapped)
case("cache-empty-offline")(lambda ctx: _pull(ctx, "--offline"))
case("cache-revision-offline")(lambda ctx: ctx.pulled() and _pull(ctx, "--offline", "--revision", "v2"))


# ------------------------------------------------------------------------------------------------- push
def _push(folder: Path, *extra: object) -> list[object]:
    return ["push", folder, "--repo-id", "user/hostile", *extra]


case("push-empty-folder")(lambda ctx: _push(ctx.root / "cwd"))
case("push-weights-link-out")(
    lambda ctx: (
        (ctx.toy() / "model.safetensors").unlink()
        or (ctx.toy() / "model.safetensors").symlink_to(TOY / "model.safetensors")
        or _push(ctx.toy())
    )
)
case("push-config-link-out")(
    lambda ctx: (
        (ctx.toy() / "config.json").unlink()
        or (ctx.toy() / "config.json").symlink_to(ctx.outside / "victim.txt")
        or _push(ctx.toy())
    )
)
case("push-repo-dotdot")(lambda ctx: ["push", ctx.toy(), "--repo-id", "../x"])
case("push-repo-long")(lambda ctx: ["push", ctx.toy(), "--repo-id", LONG])
case("push-revision-dotdot")(lambda ctx: _push(ctx.toy(), "--revision", "../main"))
case("push-metrics-malformed")(lambda ctx: ctx.write("model/metrics.json", "[1, 2") and _push(ctx.toy()))
case("push-metrics-nested")(lambda ctx: ctx.write("model/metrics.json", DEEP) and _push(ctx.toy()))
case("push-no-token")(lambda ctx: _push(ctx.toy()))
case("push-bad-token")(lambda ctx: ctx.monkeypatch.setenv("HF_TOKEN", "hf_wrong") or _push(ctx.toy()))
case("push-server-500")(
    lambda ctx: ctx.monkeypatch.setenv("HF_TOKEN", TEST_TOKEN) or ctx.hub.fail_requests(500) or _push(ctx.toy())
)
case("push-unreachable")(
    lambda ctx: (
        ctx.monkeypatch.setenv("HF_TOKEN", TEST_TOKEN)
        or ctx.monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
        or _push(ctx.toy())
    )
)
case("push-a-file", usage=True)(lambda ctx: _push(TOY / "config.json"))


# ---------------------------------------------------------------------------------- training inputs
def _mnist_dir(ctx: Ctx, images: bytes) -> Path:
    return ctx.write("cwd/mnist/train-images-idx3-ubyte.gz", images).parent


def _train(data: Callable[[Ctx], Path]) -> Callable[[Ctx], list[object]]:
    return lambda ctx: ["train", "mnist-vae", "--data-dir", data(ctx), "--out", ctx.out / "run", "--max-steps", 1]


def _idx(shape: tuple[int, ...], code: int = 8, payload: int | None = None) -> bytes:
    head = bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)
    size = int(np.prod(shape)) if payload is None else payload
    return gzip.compress(head + bytes(size))


TRAIN: dict[str, Callable[[Ctx], list[object]]] = {
    "no-data": _train(lambda ctx: ctx.root / "cwd" / "empty"),
    "labels-as-images": _train(lambda ctx: _mnist_dir(ctx, _idx((60,)))),
    "gzip-garbage": _train(lambda ctx: _mnist_dir(ctx, b"\x1f\x8b" + os.urandom(200))),
    "idx-truncated": _train(lambda ctx: _mnist_dir(ctx, _idx((100, 28, 28), payload=500))),
    "idx-huge-header": _train(lambda ctx: _mnist_dir(ctx, _idx((60000, 28000, 28000), payload=0))),
    "idx-float-images": _train(lambda ctx: _mnist_dir(ctx, _idx((10, 28, 28), code=0x0D, payload=10 * 784 * 4))),
    "idx-gzip-bomb": _train(
        lambda ctx: _mnist_dir(ctx, gzip.compress(bytes([0, 0, 8, 3]) + bytes(12) + bytes(32 << 20), 1))
    ),
    "idx-dev-zero": _train(
        lambda ctx: (
            (ctx.root / "cwd" / "z").mkdir()
            or (ctx.root / "cwd" / "z" / "train-images-idx3-ubyte.gz").symlink_to("/dev/zero")
            or ctx.root / "cwd" / "z"
        )
    ),
    "resume-nothing": lambda ctx: ["train", "toy-avb", "--out", ctx.out / "run", "--resume", "--max-steps", 1],
    "resume-corrupt": lambda ctx: (
        ctx.write("out/run/training_state.safetensors", os.urandom(300))
        and ctx.write("out/run/config.json", (TOY / "config.json").read_text())
        and ["train", "toy-avb", "--out", ctx.out / "run", "--resume", "--max-steps", 1]
    ),
    "device-unknown": lambda ctx: ["train", "toy-avb", "--out", ctx.out / "run", "--device", "tpu:7"],
    "device-cuda-9": lambda ctx: ["train", "toy-avb", "--out", ctx.out / "run", "--device", "cuda:9"],
    "seeds-garbage": lambda ctx: ["train", "toy-avb", "--out", ctx.out / "run", "--seeds", "3-a"],
    "seeds-huge": lambda ctx: ["train", "toy-avb", "--out", ctx.out / "run", "--seeds", "0-100000000"],
    "out-is-a-file": lambda ctx: ["train", "toy-avb", "--out", ctx.write("out/file", "x") / "run", "--max-steps", 1],
}
for _name, _build in TRAIN.items():
    case(f"train-{_name}")(_build)
case("train-batch-zero", usage=True)(lambda ctx: ["train", "toy-avb", "--batch-size", 0])


# -------------------------------------------------------------------------------- evaluation inputs
def _eval(folder: Callable[[Ctx], Path], *extra: object) -> Callable[[Ctx], list[object]]:
    return lambda ctx: ["eval", folder(ctx), "--n-test", 2, "--ais-steps", 2, "--no-write", *extra]


case("eval-no-weights")(_eval(lambda ctx: (ctx.toy() / "model.safetensors").unlink() or ctx.toy()))
case("eval-nan-weights")(_eval(WEIGHTS["nan"]))
case("eval-config-nested")(_eval(CONFIGS["nested-50000"]))
case("eval-device-unknown")(_eval(lambda ctx: ctx.toy(), "--device", "quantum"))
case("eval-pilot-chains-negative")(_eval(lambda ctx: ctx.toy(), "--ais-pilot-chains", -1))
case("eval-unpublished-model")(lambda ctx: ["eval", "mnist-vae-v2", "--n-test", 2, "--ais-steps", 2, "--no-write"])
case("eval-mnist-config-without-data")(
    _eval(lambda ctx: ctx.config(data={"name": "mnist"}), "--data-dir", Path("no-data"))
)


def test_the_tree_check_sees_writes_changes_and_deletes(tmp_path: Path) -> None:
    for rel in ("home/.bashrc", "out/keep", "hf/hub/x", "outside/victim.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("v1")
    before = snapshot(tmp_path)
    (tmp_path / "home" / ".bashrc").write_text("v2, longer")
    (tmp_path / "outside" / "victim.txt").unlink()
    (tmp_path / "home" / ".cache").mkdir()
    (tmp_path / "out" / "new").write_text("fine")
    (tmp_path / "hf" / "hub" / "x").unlink()
    found = changes_outside(before, snapshot(tmp_path), ("out", "hf"))
    assert sorted(found) == ["changed home/.bashrc", "deleted outside/victim.txt", "written home/.cache"]
