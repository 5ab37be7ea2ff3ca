"""Nothing leaves the model folder, nothing outside the cache is deleted, nothing unverified runs, no telemetry."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from onnx_models import exported
from zoo_helpers import SMALL, model_folder

import avb_zoo.catalogue.registry as reg
from avb_zoo.errors import ChecksumError, ExportError, GraphError
from avb_zoo.hub import upload as zoo_hub
from avb_zoo.hub.hashes import sha256_file
from avb_zoo.hub.resolve import pull
from avb_zoo.hub.upload import push_files
from avb_zoo.modelling.publishing import push

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
SECRET = "hf_secret_credentials_0123456789"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def hub(hub_server: HubFixture, monkeypatch: pytest.MonkeyPatch) -> HubFixture:  # noqa: F811
    reg.all_specs()
    monkeypatch.setattr(reg, "registry", dict(reg.registry))
    monkeypatch.setattr(reg, "_plugins_loaded", True)
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    return hub_server


def _register(repo_id: str, folder: Path) -> None:
    hashes = {rel: sha256_file(path) for rel, path in push_files(folder).items()}
    config = json.loads((folder / "config.json").read_text())
    reg.register("test/model-v1", kwargs=config, hub_repo_id=repo_id, hub_revision="main", files=hashes)


def _cli(*args: object):
    from avb_zoo.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def test_push_uploads_only_the_zoo_files_inside_the_folder(hub: HubFixture, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "token.json").write_text(json.dumps({"test_nll": 1.0, "token": SECRET}))
    (secrets / "id_rsa").write_text(SECRET)
    folder = model_folder(tmp_path / "m", SMALL, 0)
    (folder / "metrics.json").symlink_to(secrets / "token.json")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "decoder.onnx").symlink_to(secrets / "id_rsa")
    (folder / "onnx" / "decoder.onnx.data").symlink_to(secrets / "id_rsa")
    (folder / "onnx" / "stray.onnx").write_text(SECRET)
    (folder / "notes.txt").write_text(SECRET)
    result = _cli("push", folder, "--repo-id", "user/leak", "--torch-only")
    assert result.exit_code == 0, result.output
    repo = hub.server.repo("user/leak")
    files = repo.commits[repo.branches["main"]].files
    assert set(files) == {
        ".gitattributes",
        "config.json",
        "model.safetensors",
        "README.md",
        "samples.png",
    }  # grid: generated
    card = Path(hub.api().hf_hub_download("user/leak", "README.md", cache_dir=tmp_path / "card")).read_text()
    assert SECRET not in card and "test_nll" not in card
    assert "skipped metrics.json: a symbolic link" in result.stderr
    assert "skipped onnx/stray.onnx: not a file the zoo defines" in result.stderr
    assert set(zoo_hub.push_skipped(folder)) == {
        "metrics.json",
        "onnx/decoder.onnx",
        "onnx/decoder.onnx.data",
        "onnx/stray.onnx",
        "notes.txt",
    }

    # an onnx/ that is a link to another folder: its graphs' real paths lie outside the model folder
    other = model_folder(tmp_path / "m2", SMALL, 0)
    (other / "onnx").symlink_to(secrets)
    (secrets / "encoder.onnx").write_text(SECRET)
    assert "onnx/encoder.onnx" not in push_files(other) and "onnx" in zoo_hub.push_skipped(other)
    # a required file that is a link is refused in one line
    third = model_folder(tmp_path / "m3", SMALL, 0)
    shutil.move(third / "model.safetensors", secrets / "model.safetensors")
    (third / "model.safetensors").symlink_to(secrets / "model.safetensors")
    result = _cli("push", third, "--repo-id", "user/leak2")
    assert result.exit_code == 1 and "model.safetensors is a symbolic link" in result.output
    assert "Traceback" not in result.output and ("model", "user/leak2") not in hub.server.repos


def _pulled(hub: HubFixture, tmp_path: Path) -> tuple[Path, Path]:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    push(folder, "user/cached")
    _register("user/cached", folder)
    cache = tmp_path / "cache"
    return pull("test/model-v1", cache_dir=cache), cache


def test_a_hash_mismatch_never_deletes_through_a_link_out_of_the_cache(hub: HubFixture, tmp_path: Path) -> None:
    snapshot, cache = _pulled(hub, tmp_path)
    victim = tmp_path / "victim.safetensors"
    victim.write_bytes(b"precious, and not the model")
    link = snapshot / "model.safetensors"
    link.unlink()
    link.symlink_to(victim)
    with pytest.raises(ChecksumError, match="model.safetensors has sha256"):
        pull("test/model-v1", cache_dir=cache, offline=True)
    assert victim.read_bytes() == b"precious, and not the model"

    # the whole snapshot folder a link to a folder outside the cache: nothing in it is deleted either
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "config.json").write_text((snapshot / "config.json").read_text())
    (outside / "model.safetensors").write_bytes(b"someone else's file")
    shutil.rmtree(snapshot)
    snapshot.symlink_to(outside)
    with pytest.raises(ChecksumError):
        pull("test/model-v1", cache_dir=cache, offline=True)
    assert (outside / "model.safetensors").read_bytes() == b"someone else's file"


def test_a_graph_planted_in_the_cache_is_not_run(
    hub: HubFixture, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from avb_zoo.runtime import Encoder

    source = exported(tmp_path_factory, "mnist")
    folder = tmp_path / "published"
    shutil.copytree(source, folder)
    planted = (folder / "onnx" / "moments.onnx").read_bytes()
    (folder / "onnx" / "moments.onnx").unlink()  # the catalogue's model has no moments graph
    push(folder, "user/graphs")
    _register("user/graphs", folder)
    snapshot = pull("test/model-v1")
    assert (snapshot / "onnx" / "encoder.onnx").exists()
    (snapshot / "onnx" / "moments.onnx").write_bytes(planted)
    x = np.zeros((2, 784), dtype=np.float32)
    encoder = Encoder("test/model-v1", providers="cpu")
    assert encoder.encode(x, seed=0).shape == (2, 8)  # the catalogued encoder runs
    with pytest.raises(GraphError, match="not among the model's catalogued files"):
        encoder.moments(x)
    np.save(tmp_path / "x.npy", x)
    result = _cli(
        "encode", "test/model-v1", tmp_path / "x.npy", "--out", tmp_path / "z.npy", "--moments", tmp_path / "m.npz"
    )
    assert result.exit_code == 1 and "moments.onnx is not among" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "z.npy").exists()


def test_export_never_writes_through_an_onnx_link(tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "onnx").symlink_to(elsewhere)
    result = _cli("export", folder, "--seed", "0")
    assert result.exit_code == 1 and "is a symbolic link" in result.output and "Traceback" not in result.output
    assert list(elsewhere.iterdir()) == []
    with pytest.raises(ExportError, match="symbolic link"):
        from avb_zoo.export import export_folder

        export_folder(folder)


def _ort_env(env: dict[str, str]) -> str:
    """ORT_DISABLE_TELEMETRY as onnxruntime saw it on its first import, in a fresh process."""
    code = "import avb_zoo.runtime, os, sys; assert 'onnxruntime' in sys.modules; print(os.environ[sys.argv[1]])"
    base = {k: v for k, v in os.environ.items() if k != "ORT_DISABLE_TELEMETRY"}
    env = {**base, "PYTHONPATH": str(ROOT), **env}
    done = subprocess.run(
        [sys.executable, "-c", code, "ORT_DISABLE_TELEMETRY"], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_onnxruntime_telemetry_is_off_unless_the_user_decides() -> None:
    assert _ort_env({}) == "1"
    assert _ort_env({"ORT_DISABLE_TELEMETRY": "0"}) == "0"
    # one module imports onnxruntime; every other goes through it, so the variable is always set first
    sources = [ROOT / "cli.py"] + [
        path
        for folder in ("avb_zoo", "export", "models", "benchmarks", "tests")
        for path in (ROOT / folder).rglob("*.py")
    ]  # the project's own code, not a virtual environment inside the checkout
    importers = [
        path.relative_to(ROOT).as_posix()
        for path in sources
        if any(
            line.strip().startswith(("import onnxruntime", "from onnxruntime"))
            for line in path.read_text().splitlines()
        )
    ]
    assert importers == ["avb_zoo/runtime/ort.py"]
