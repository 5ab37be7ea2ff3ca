"""Pull and push against the local Hub (tests/hub_server.py) with the real huggingface_hub client."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from zoo_helpers import BIG, SMALL, model_folder

import avb_zoo
import avb_zoo.catalogue.registry as reg
from avb_zoo.errors import (
    CheckpointError,
    ChecksumError,
    ConfigError,
    HubAuthError,
    HubNotFound,
    HubUnreachable,
    InvalidRepoId,
)
from avb_zoo.hub.hashes import sha256_file
from avb_zoo.hub.resolve import fetch, pull, resolve
from avb_zoo.modelfile.files import PUSHED
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.publishing import push

# huggingface_hub's LFS PUT passes a file object as `data=`, which httpx2 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    reg.all_specs()
    monkeypatch.setattr(reg, "registry", dict(reg.registry))
    monkeypatch.setattr(reg, "_plugins_loaded", True)
    return reg


@pytest.fixture
def hub(hub_server: HubFixture, registry, monkeypatch: pytest.MonkeyPatch) -> HubFixture:  # noqa: F811
    """The local Hub, with its write token in HF_TOKEN and the registry restored after the test."""
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    return hub_server


def _hashes(folder: Path) -> dict[str, str]:
    """sha256 of the zoo's files in ``folder`` (a cache snapshot holds links into the cache, so not push_files)."""
    return {rel: sha256_file(folder / rel) for rel in PUSHED if (folder / rel).exists()}


def _register(repo_id: str, folder: Path, revision: str = "main", name: str = "test/model-v1", **extra):
    return reg.register(
        name,
        kwargs={**json.loads((folder / "config.json").read_text())},
        hub_repo_id=repo_id,
        hub_revision=revision,
        files=extra.pop("files", None) or _hashes(folder),
        **extra,
    )


def _tree(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_push_then_pull_into_a_clean_cache_is_identical(
    hub: HubFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = model_folder(tmp_path / "src", BIG, 0, {"metrics": {"test_nll": 91.25}, "protocol": "AIS, 1000 steps"})
    (src / "onnx").mkdir()
    (src / "onnx" / "decoder.onnx").write_bytes(os.urandom(4096))
    assert (src / "model.safetensors").stat().st_size > 10 * 1024 * 1024
    url = push(src, "user/big-vae", commit_message="first model")
    repo = hub.server.repo("user/big-vae")
    head = repo.branches["main"]
    assert url == f"{hub.endpoint}/user/big-vae/commit/{head}"
    commit = repo.commits[head]
    assert commit.title == "first model" and len(repo.commits) == 2  # the repo's initial commit, then one commit
    assert set(repo.commits[commit.parent or ""].files) == {".gitattributes"}
    assert set(commit.files) >= {"config.json", "model.safetensors", "metrics.json", "onnx/decoder.onnx", "README.md"}
    assert commit.files["model.safetensors"].lfs_oid == sha256_file(src / "model.safetensors")
    assert sum(m == "PUT" for m, _ in hub.server.requests) == 3  # model.safetensors, the ONNX graph, samples.png

    card = hub.api().hf_hub_download("user/big-vae", "README.md", cache_dir=tmp_path / "card")
    text = Path(card).read_text()
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["library_name"] == "avb-zoo" and meta["datasets"] == ["ylecun/mnist"]
    assert meta["metrics"] == ["test_nll"] and "vae" in meta["tags"] and "onnx" in meta["tags"]
    assert meta["model-index"][0]["results"][0]["metrics"][0]["value"] == 91.25
    assert 'AVBModel.from_pretrained("user/big-vae")' in text and sha256_file(src / "model.safetensors") in text

    _register("user/big-vae", src)
    cache = tmp_path / "clean-cache"
    pulled = fetch("test/model-v1", cache_dir=cache)
    assert pulled.source == "hub" and pulled.commit == head and pulled.folder.is_relative_to(cache)
    assert _hashes(pulled.folder) == _hashes(src)
    model, original = avb_zoo.make("test/model-v1", cache_dir=cache), load(src)
    z = torch.randn(4, 8, generator=torch.Generator().manual_seed(1))
    x = torch.rand(4, 784, generator=torch.Generator().manual_seed(2))
    assert torch.equal(model.decode_logits(z), original.decode_logits(z))
    assert all(torch.equal(a, b) for a, b in zip(model.encoder.gaussian(x), original.encoder.gaussian(x), strict=True))


def test_revision_pins_the_weights(hub: HubFixture, tmp_path: Path) -> None:
    first = model_folder(tmp_path / "first", SMALL, 1)
    second = model_folder(tmp_path / "second", SMALL, 2)
    sha1 = push(first, "user/pinned").rsplit("/", 1)[1]
    push(second, "user/pinned")
    spec = _register("user/pinned", first, revision=sha1)
    pulled = fetch(spec, cache_dir=tmp_path / "c1")
    assert pulled.commit == sha1 and _hashes(pulled.folder) == _hashes(first)
    assert fetch(spec, revision=sha1[:12], cache_dir=tmp_path / "c2").commit == sha1  # a short sha resolves too
    # main now holds other weights: the catalogue's hashes refuse them, and the bad file leaves the cache
    with pytest.raises(ChecksumError, match=r"user/pinned@[0-9a-f]{40}: model\.safetensors has sha256"):
        fetch(spec, revision="main", cache_dir=tmp_path / "c3")
    assert not list((tmp_path / "c3").rglob("model.safetensors"))


def test_clear_messages_for_missing_repo_revision_file_and_bad_token(
    hub: HubFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    push(folder, "user/present")
    push(folder, "user/secret", private=True)
    cache = tmp_path / "cache"
    _register("user/absent", folder, name="test/absent-v1")
    with pytest.raises(HubNotFound, match=r"repository user/absent not found on http://127\.0\.0\.1"):
        pull("test/absent-v1", cache_dir=cache)
    _register("user/present", folder, revision="no-such-branch", name="test/badrev-v1")
    with pytest.raises(HubNotFound, match="revision 'no-such-branch' not found in user/present"):
        pull("test/badrev-v1", cache_dir=cache)
    files = {**_hashes(folder), "onnx/encoder.onnx": "0" * 64}
    _register("user/present", folder, name="test/nofile-v1", files=files)
    with pytest.raises(HubNotFound, match="user/present at revision 'main' has no file 'onnx/encoder.onnx'"):
        pull("test/nofile-v1", cache_dir=cache)

    bad = "hf_this_token_is_wrong_0123456789"
    monkeypatch.setenv("HF_TOKEN", bad)
    _register("user/present", folder, name="test/present-v1")
    with pytest.raises(HubAuthError, match="refused the token") as err:
        pull("test/present-v1", cache_dir=tmp_path / "other")
    assert bad not in str(err.value)
    result = CliRunner().invoke(main_cli(), ["pull", "test/present-v1", "--cache-dir", str(tmp_path / "x")])
    assert result.exit_code == 1 and "refused the token" in result.output and bad not in result.output
    with pytest.raises(HubAuthError, match="refused to let this token write") as err:
        push(folder, "user/present")
    assert bad not in str(err.value)

    monkeypatch.delenv("HF_TOKEN")
    _register("user/secret", folder, name="test/secret-v1")
    with pytest.raises(HubNotFound, match="if it is private, set HF_TOKEN"):
        pull("test/secret-v1", cache_dir=cache)
    with pytest.raises(HubAuthError, match="write access"):
        push(folder, "user/new-repo")


def test_tampered_download_is_caught_and_deleted(
    hub: HubFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    push(folder, "user/tampered")
    _register("user/tampered", folder)
    hub.server.corrupt_file("user/tampered", "model.safetensors")
    cache = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="model.safetensors has sha256 .* deleted from the cache"):
        pull("test/model-v1", cache_dir=cache)
    assert not [p for p in cache.rglob("*") if p.is_file() and p.stat().st_size > 1000]  # blob and link are gone
    hub.server.corrupt_file("user/tampered", "model.safetensors", enabled=False)
    assert _hashes(pull("test/model-v1", cache_dir=cache)) == _hashes(folder)
    # a cached file altered on disk later is caught on the next pull too
    blob = (pull("test/model-v1", cache_dir=cache) / "model.safetensors").resolve()
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    with pytest.raises(ChecksumError):
        pull("test/model-v1", cache_dir=cache, offline=True)


def _no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    attempts: list = []

    def refuse(self, address):  # noqa: ANN001
        attempts.append(address)
        raise OSError("network use is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a[0] if a else None))
    return attempts


def test_offline_is_served_by_the_shipped_copy_without_any_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    attempts = _no_network(monkeypatch)
    pulled = fetch("toy-avb-v1", offline=True)
    assert pulled.source == "shipped" and "offline mode" in pulled.detail
    assert pulled.folder == avb_zoo.spec("toy-avb-v1").local_dir
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert fetch("toy-avb").source == "shipped"
    result = CliRunner().invoke(main_cli(), ["pull", "toy-avb-v1", "--offline"])
    assert result.exit_code == 0, result.output
    assert "the copy shipped with the package" in result.output and str(pulled.folder) in result.output
    assert attempts == []
    assert not (tmp_path / "hf").exists()  # nothing was written


def test_unreachable_hub_falls_back_to_the_shipped_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "2")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    pulled = fetch("toy-avb-v1", cache_dir=tmp_path / "cache", progress=False)
    assert pulled.source == "shipped" and f"127.0.0.1:{port}" in pulled.detail
    assert "could not be reached" in pulled.detail
    result = CliRunner().invoke(main_cli(), ["pull", "toy-avb-v1", "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "from: the copy shipped with the package (the Hub at http://127.0.0.1" in result.output


def test_offline_without_any_copy_fails_clearly(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _no_network(monkeypatch)
    folder = model_folder(tmp_path / "m", SMALL, 0)
    _register("user/never-pulled", folder)
    with pytest.raises(
        HubUnreachable,
        match=r"cannot pull test/model-v1 \(user/never-pulled@main\): offline mode, the cache .* pull it once online",
    ):
        pull("test/model-v1", cache_dir=tmp_path / "cache", offline=True)


def test_pull_writes_only_inside_the_cache(hub: HubFixture, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants
    from huggingface_hub.utils import _detect_agent

    folder = model_folder(tmp_path / "m", SMALL, 0)
    push(folder, "user/contained")
    _register("user/contained", folder)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    # huggingface_hub's own telemetry (on by default) fetches a list once per process and writes it to HF_HOME
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", False)
    monkeypatch.setattr(_detect_agent, "_registry", None)
    monkeypatch.setattr(huggingface_hub.constants, "AGENT_HARNESSES_PATH", str(hub.hf_home / ".agents.json"))
    before = _tree(tmp_path)
    cache = tmp_path / "cache"
    got = pull("test/model-v1", cache_dir=cache)
    assert pull("test/model-v1", cache_dir=cache, offline=True) == got  # and it is found offline afterwards
    new = _tree(tmp_path) - before
    assert new and all(p == cache or p.is_relative_to(cache) for p in new), sorted(map(str, new))[:5]


def test_resolve_takes_folders_and_ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    folder = model_folder(tmp_path / "m", SMALL, 0)
    assert resolve(folder).folder == folder and resolve(str(folder)).folder == folder
    assert resolve("toy-avb-v1", offline=True).folder == avb_zoo.spec("toy-avb-v1").local_dir
    with pytest.raises(CheckpointError, match="holds no config.json"):
        resolve(tmp_path)
    with pytest.raises(CheckpointError, match="not a model folder"):
        resolve("./no/such/folder")
    with pytest.raises(avb_zoo.errors.NameNotFound, match="is not a folder either"):
        resolve("toy-abv")


@pytest.mark.parametrize(
    "repo_id", ["../evil", "/etc/passwd", "org/../../x", "org/name/extra", "org/na me", "org/x.git", "org/--x", "org/"]
)
def test_bad_repo_ids_are_refused_before_any_request(
    hub_server: HubFixture,  # noqa: F811
    tmp_path: Path,
    repo_id: str,
) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    with pytest.raises(InvalidRepoId, match="repo id"):
        push(folder, repo_id, token=hub_server.token)
    assert hub_server.server.requests == []


def test_push_refuses_bad_revisions_and_broken_folders(
    hub_server: HubFixture,  # noqa: F811
    tmp_path: Path,
) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    for revision in ("../main", "/main", "-rf", "a b"):
        with pytest.raises(InvalidRepoId, match="revision"):
            push(folder, "user/x", revision=revision, token=hub_server.token)
    with pytest.raises(CheckpointError, match="lacks"):
        push(tmp_path, "user/x", token=hub_server.token)
    raw = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        push(folder, "user/x", token=hub_server.token)
    assert hub_server.server.requests == []


def test_push_to_a_branch_and_cli(hub: HubFixture, tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "m", SMALL, 0)
    runner = CliRunner()
    result = runner.invoke(main_cli(), ["push", str(folder), "--repo-id", "user/cli", "--revision", "dev", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    repo = hub.server.repo("user/cli")
    assert out["commit_url"].endswith(repo.branches["dev"]) and out["files"] == _hashes(folder)
    assert "model.safetensors" not in repo.commits[repo.branches["main"]].files
    _register("user/cli", folder, revision="dev")
    result = runner.invoke(main_cli(), ["pull", "test/model-v1", "--cache-dir", str(tmp_path / "c"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["commit"] == repo.branches["dev"]
    result = runner.invoke(main_cli(), ["push", str(folder), "--repo-id", "../x"])
    assert (
        result.exit_code == 1 and result.output.startswith("error: repo id '../x'") and "Traceback" not in result.output
    )


def test_list_and_info_commands(registry) -> None:
    registry.register("test/listed-v1", kwargs=SMALL, metrics={"test_nll": 90.5})
    runner = CliRunner()
    result = runner.invoke(main_cli(), ["list"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "LATEST", "METHOD", "DATA", "WEIGHTS", "METRICS"]
    toy = next(line for line in lines if line.startswith("toy-avb-v1"))
    assert "avb-zoo/toy-avb@main (shipped)" in toy and "log_likelihood=" in toy
    assert any(line.startswith("test/listed-v1") and line.endswith("test_nll=90.5") for line in lines)
    listed = json.loads(runner.invoke(main_cli(), ["list", "--json"]).stdout)
    assert {"toy-avb-v1", "test/listed-v1"} <= {s["id"] for s in listed}
    info = json.loads(runner.invoke(main_cli(), ["info", "toy-avb", "--json"]).stdout)
    assert info["id"] == "toy-avb-v1" and set(info["hub"]["files"]) >= {"config.json", "model.safetensors"}
    result = runner.invoke(main_cli(), ["info", "toy-abv"])
    assert result.exit_code == 1 and "Did you mean: 'toy-avb'" in result.output


def test_model_card_without_metrics_or_dataset() -> None:
    from avb_zoo.cards.card import card_metadata, metric_errors, metric_values, render_model_card

    config = {**SMALL, "data": {"name": "toy"}, "method": "vae"}
    text = render_model_card(config, {}, "org/toy", {"config.json": "a" * 64})
    meta = yaml.safe_load(text.split("---")[1])
    assert meta["library_name"] == "avb-zoo" and "datasets" not in meta and "metrics" not in meta
    written_by_eval = {
        "log_likelihood": -1.4,
        "log_likelihood_mc_se": 0.002,
        "log_likelihood_spread_se": 0.01,
        "elbo_estimate": -1.3,
        "elbo_kind": "estimate, not a bound",
    }
    values = metric_values({**written_by_eval, "kl": float("nan"), "ok": True})
    assert values == {"log_likelihood": -1.4, "elbo_estimate": -1.3}
    assert metric_errors(written_by_eval) == {"log_likelihood": {"_mc_se": 0.002, "_spread_se": 0.01}}
    card = render_model_card(config, written_by_eval, "org/toy", {})
    assert "| log_likelihood | -1.4 | 0.002 | 0.01 |" in card
    assert "| metric | value | Monte Carlo s.e. | spread s.e. |" in card
    # the estimate is in its own table, after the text saying it is not a bound
    assert card.index("not bounds") < card.index("| elbo_estimate | -1.3 | - | - |")
    assert "model-index" not in card_metadata(config, {"nll": 1.0}, "org/toy", False)


def test_push_rejects_a_malformed_metrics_file(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    folder = model_folder(tmp_path / "m", SMALL, 0)
    (folder / "metrics.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="metrics.json must hold a JSON object"):
        push(folder, "user/x", token=hub_server.token)


def main_cli():
    from avb_zoo.cli import main

    return main


def test_sha256_file_streams() -> None:
    path = Path(__file__)
    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_model_missing_from_the_hub_is_served_by_the_shipped_copy(
    hub_server: HubFixture,  # noqa: F811
    tmp_path: Path,
) -> None:
    # The local Hub has no avb-zoo/toy-avb repo (as the public Hub before the model is published).
    pulled = fetch("toy-avb-v1", cache_dir=tmp_path / "cache", progress=False)
    assert pulled.source == "shipped" and "repository avb-zoo/toy-avb not found" in pulled.detail
    # A revision the user asked for explicitly is not silently replaced by the shipped copy.
    with pytest.raises(HubNotFound, match="avb-zoo/toy-avb not found"):
        fetch("toy-avb-v1", revision="main", cache_dir=tmp_path / "cache", progress=False)
