"""Any Hub repo as a model id (``hf-hub:ORG/NAME[@REV]`` and bare ``ORG/NAME``), against the local Hub server."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from avb_zoo.cli import main
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from onnx_models import exported
from zoo_helpers import SMALL, model_folder

import avb_zoo
import avb_zoo.catalogue.registry as reg
from avb_zoo.errors import ChecksumError, ConfigError, HubNotFound, HubUnreachable, ModelNotFound
from avb_zoo.hub.repo import RECORD
from avb_zoo.hub.resolve import fetch
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.publishing import push

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture(scope="module")
def mnist(tmp_path_factory):
    return exported(tmp_path_factory, "mnist")


@pytest.fixture
def hub(hub_server: HubFixture, monkeypatch: pytest.MonkeyPatch) -> HubFixture:  # noqa: F811
    reg.all_specs()
    monkeypatch.setattr(reg, "registry", dict(reg.registry))
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    return hub_server


def cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


def _cache_files(hub: HubFixture) -> list[Path]:
    root = hub.hf_home / "hub"
    files = root.rglob("*") if root.exists() else []
    return sorted(p for p in files if p.is_file() and "/.locks/" not in str(p) and p.name != "CACHEDIR.TAG")


def test_push_then_pull_sample_and_encode_by_hf_hub_and_bare_ids(hub: HubFixture, mnist: Path, tmp_path: Path) -> None:
    push(mnist, "me/my-avb")
    commit = hub.server.repo("me/my-avb").branches["main"]
    for name in ("hf-hub:me/my-avb", "me/my-avb"):
        result = cli("pull", name, "--quiet")
        assert result.exit_code == 0, result.output
        assert commit in result.output
        if name == "me/my-avb":
            assert "taken as the Hub repo hf-hub:me/my-avb" in result.output
    pulled = fetch("hf-hub:me/my-avb")
    assert pulled.commit == commit and pulled.source == "hub"
    record = json.loads((pulled.folder / RECORD).read_text())
    assert record["commit"] == commit and record["sha256"]["model.safetensors"] == pulled.files["model.safetensors"]
    out = tmp_path / "grid.png"
    for name in ("hf-hub:me/my-avb", "me/my-avb"):
        result = cli("sample", name, "-n", "4", "--out", out)
        assert result.exit_code == 0, result.output
        assert ("taken as the Hub repo hf-hub:me/my-avb" in result.output) == (name == "me/my-avb")
    by_id = avb_zoo.runtime.Sampler("hf-hub:me/my-avb").sample(4, seed=1)
    assert np.array_equal(by_id, avb_zoo.runtime.Sampler(mnist).sample(4, seed=1))
    x = np.random.default_rng(0).random((3, 784), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    result = cli("encode", "me/my-avb", tmp_path / "x.npy", "--out", tmp_path / "z.npy")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(tmp_path / "z.npy"), avb_zoo.runtime.Encoder(mnist).encode(x, seed=0))
    model = avb_zoo.make("hf-hub:me/my-avb")
    want = load(mnist, with_adversary=False)
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.decoder.state_dict().values(), want.decoder.state_dict().values(), strict=True)
    )


def test_revisions_by_branch_tag_and_sha(hub: HubFixture, tmp_path: Path) -> None:
    first = model_folder(tmp_path / "a", SMALL, 0)
    second = model_folder(tmp_path / "b", SMALL, 1)
    push(first, "me/revs")
    sha1 = hub.server.repo("me/revs").branches["main"]
    hub.api().create_tag("me/revs", tag="v1", revision=sha1)
    push(second, "me/revs", revision="dev")
    sha_dev = hub.server.repo("me/revs").branches["dev"]
    assert sha_dev != sha1
    for name, revision, want in (
        ("hf-hub:me/revs@v1", None, sha1),
        ("hf-hub:me/revs@dev", None, sha_dev),
        (f"hf-hub:me/revs@{sha1}", None, sha1),
        ("me/revs", "dev", sha_dev),
    ):
        pulled = fetch(name, revision=revision, progress=False)
        assert pulled.commit == want, name
    result = cli("pull", "hf-hub:me/revs@dev", "--quiet", "--json")
    assert json.loads(result.output)["commit"] == sha_dev
    weights = {rev: avb_zoo.make(f"hf-hub:me/revs@{rev}").encoder.state_dict() for rev in ("v1", "dev")}
    assert not all(torch.equal(a, b) for a, b in zip(weights["v1"].values(), weights["dev"].values(), strict=True))


def test_a_tampered_lfs_file_fails_the_pull_and_is_deleted(hub: HubFixture, tmp_path: Path) -> None:
    push(model_folder(tmp_path / "m", SMALL, 0), "me/tampered")
    hub.server.corrupt_file("me/tampered", "model.safetensors")
    with pytest.raises(ChecksumError, match="model.safetensors has sha256 .* the Hub states"):
        fetch("hf-hub:me/tampered", progress=False)
    assert _cache_files(hub) == []  # the bad file is gone, and nothing else of the failed pull stays
    assert not any(p.name == "model.safetensors" for p in (hub.hf_home / "hub").rglob("*"))
    line = _one_line_error(cli("pull", "hf-hub:me/tampered", "--quiet"))
    assert "model.safetensors" in line
    hub.server.corrupt_file("me/tampered", "model.safetensors", enabled=False)
    assert fetch("hf-hub:me/tampered", progress=False).source == "hub"


def test_offline_serves_hub_repos_from_the_cache_only(
    hub: HubFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push(model_folder(tmp_path / "m", SMALL, 0), "me/offline")
    online = fetch("hf-hub:me/offline", progress=False)
    hub.server.stop()
    cached = fetch("hf-hub:me/offline", offline=True)
    assert cached.source == "cache" and cached.folder == online.folder and cached.commit == online.commit
    with pytest.raises(HubUnreachable, match="has no verified copy"):
        fetch("hf-hub:me/offline@other", offline=True)
    (online.folder / "model.safetensors").resolve().write_bytes(b"changed")
    with pytest.raises(ChecksumError, match="no longer matches"):
        fetch("hf-hub:me/offline", offline=True)


def test_bad_names_revisions_and_repos_fail_in_one_line(hub: HubFixture, tmp_path: Path) -> None:
    api = hub.api()
    for name, words in (
        ("a/b/c", "neither a registered model"),
        ("hf-hub:me/..x", "may not contain"),
        ("hf-hub:nobody/nothing", "not found"),
    ):
        assert words in _one_line_error(cli("pull", name, "--quiet"))
    push(model_folder(tmp_path / "m", SMALL, 0), "me/good")
    assert "revision 'nope' not found" in _one_line_error(cli("pull", "hf-hub:me/good@nope", "--quiet"))
    api.create_repo("me/pickles")
    (tmp_path / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")
    api.upload_file(
        path_or_fileobj=tmp_path / "pytorch_model.bin", path_in_repo="pytorch_model.bin", repo_id="me/pickles"
    )
    line = _one_line_error(cli("pull", "hf-hub:me/pickles", "--quiet"))
    assert "has no config.json, model.safetensors" in line and "pytorch_model.bin" in line
    before = _cache_files(hub)
    for bad in ({**SMALL, "latent_dim": 10**9}, {**SMALL, "x_dim": "784"}):
        folder = model_folder(tmp_path / "h", SMALL, 0)
        repo = f"me/hostile-{len(before)}-{bad['latent_dim'] if isinstance(bad['x_dim'], int) else 't'}"
        api.create_repo(repo)
        (folder / "config.json").write_text(json.dumps({**json.loads((folder / "config.json").read_text()), **bad}))
        api.upload_folder(folder_path=folder, repo_id=repo)
        with pytest.raises(ConfigError, match="config.json is not a valid avb-zoo config"):
            fetch("hf-hub:" + repo, progress=False)
        assert "config.json" in _one_line_error(cli("pull", "hf-hub:" + repo, "--quiet"))
    assert _cache_files(hub) == before  # nothing of the refused repos stays in the cache


def test_a_registered_namespace_wins_over_a_hub_repo(hub: HubFixture) -> None:
    reg.register("acme/thing-v1", kwargs={**SMALL})
    with pytest.raises(ModelNotFound, match="acme"):
        fetch("acme/other-v1")  # a catalogue lookup, not a Hub request
    assert not any("acme" in path for _, path in hub.server.requests)


def test_explicit_revision_never_substitutes_the_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert fetch("toy-avb-v1", cache_dir=tmp_path / "c", progress=False).source == "shipped"
    with pytest.raises(HubUnreachable, match="not that revision"):
        fetch("toy-avb-v1", revision="main", cache_dir=tmp_path / "c", progress=False)
    line = _one_line_error(cli("pull", "toy-avb-v1", "--revision", "v1", "--cache-dir", tmp_path / "c", "--quiet"))
    assert "revision 'v1'" in line


def test_hub_errors_are_hub_errors_not_unpickling(hub: HubFixture, tmp_path: Path) -> None:
    """A pickle in the repo is named and never fetched: the cache holds no such file afterwards."""
    api = hub.api()
    folder = model_folder(tmp_path / "m", SMALL, 0)
    api.create_repo("me/mixed")
    api.upload_folder(folder_path=folder, repo_id="me/mixed")
    shutil.copy(folder / "model.safetensors", tmp_path / "pytorch_model.bin")
    api.upload_file(
        path_or_fileobj=tmp_path / "pytorch_model.bin", path_in_repo="pytorch_model.bin", repo_id="me/mixed"
    )
    pulled = fetch("hf-hub:me/mixed", progress=False)
    assert not (pulled.folder / "pytorch_model.bin").exists()
    with pytest.raises(HubNotFound):
        fetch("hf-hub:me/never-made", progress=False)


def test_info_export_and_eval_take_hub_ids(hub: HubFixture, tmp_path: Path) -> None:
    from zoo_helpers import TINY

    push(model_folder(tmp_path / "toy", {**TINY, "id": "me/toy-v1"}, 0), "me/toy")
    commit = hub.server.repo("me/toy").branches["main"]
    result = cli("info", "hf-hub:me/toy")
    assert result.exit_code == 0 and commit in result.output and "model.safetensors  sha256" in result.output
    result = cli("export", "me/toy", "--out", tmp_path / "exported", "--seed", "0", "--json")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "exported" / "onnx" / "sampler.onnx").is_file()
    result = cli("eval", "hf-hub:me/toy", "--ais-steps", "3", "--ais-chains", "1", "--n-test", "2", "--json", "--quiet")
    assert result.exit_code == 0, result.output
    assert "ais" in result.output.lower()


def test_a_mistyped_folder_is_named_as_not_a_folder_either(hub: HubFixture, tmp_path: Path) -> None:
    line = _one_line_error(cli("sample", "runs/typo", "-n", "1", "--out", tmp_path / "x.png"))
    assert "runs/typo" in line and "is not a folder either" in line and "taken as the Hub repo" not in line
