"""The local Hub server (``tests/hub_server.py``) driven by the real ``huggingface_hub`` client, offline."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.request
from pathlib import Path

import pytest
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from hub_server import HubServer, git_blob_sha1
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

# huggingface_hub's LFS PUT passes a file object as `data=`, which httpx2 deprecates: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

REPO = "user/avb-test"
BIG = 10 * 1024 * 1024 + 12_345  # over the 10 MB LFS threshold


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _small_repo(hub: HubFixture, repo_id: str = REPO, private: bool = False, **files: bytes) -> str:
    api = hub.api()
    api.create_repo(repo_id, private=private)
    ops = files or {"config.json": b'{"z_dim": 8}'}
    for name, data in ops.items():
        info = api.upload_file(path_or_fileobj=data, path_in_repo=name, repo_id=repo_id)
    return info.oid


def test_push_pull_roundtrip_and_pinning(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub, api = hub_server, hub_server.api()
    url = api.create_repo(REPO)
    assert url.repo_id == REPO and url.endpoint == hub.endpoint
    assert api.create_repo(REPO, exist_ok=True).repo_id == REPO
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO)
    assert err.value.response.status_code == 409

    large = (b"0123456789abcdef\n" * (BIG // 17 + 1))[:BIG]
    files = {
        "config.json": json.dumps({"model": "avb", "z_dim": 32}).encode(),
        "notes.txt": b"trained on MNIST\n",
        "README.md": b"---\nlicense: mit\n---\n# avb\n",
        "large.txt": large,  # LFS because of its size
        "onnx/model.onnx": os.urandom(2048),  # LFS because of its suffix
    }
    folder = _write(tmp_path / "src", files)
    n_before = len(api.list_repo_commits(REPO))
    first = api.upload_folder(repo_id=REPO, folder_path=folder, commit_message="v1")
    assert len(api.list_repo_commits(REPO)) == n_before + 1  # one commit for the whole folder
    assert [m for m, p in hub.server.requests if m == "PUT"] == ["PUT", "PUT"]  # two LFS uploads

    tree = {f.path: f for f in api.list_repo_tree(REPO, recursive=True) if hasattr(f, "blob_id")}
    assert tree["large.txt"].lfs is not None and tree["large.txt"].lfs.sha256 == hashlib.sha256(large).hexdigest()
    assert tree["onnx/model.onnx"].lfs is not None
    assert tree["config.json"].lfs is None and tree["config.json"].blob_id == git_blob_sha1(files["config.json"])
    assert api.model_info(REPO).sha == first.oid

    snap = Path(snapshot_download(REPO, endpoint=hub.endpoint, cache_dir=tmp_path / "cache1"))
    got = _files(snap)
    assert {k: got[k] for k in files} == files

    # Second commit; the first one stays reachable by full and short sha.
    new_config = json.dumps({"model": "avb", "z_dim": 64}).encode()
    second = api.upload_file(path_or_fileobj=new_config, path_in_repo="config.json", repo_id=REPO)
    assert second.oid != first.oid and api.model_info(REPO).sha == second.oid
    assert api.model_info(REPO, revision=first.oid[:7]).sha == first.oid
    old = hf_hub_download(REPO, "config.json", revision=first.oid, endpoint=hub.endpoint, cache_dir=tmp_path / "c2")
    assert Path(old).read_bytes() == files["config.json"]
    new = hf_hub_download(REPO, "config.json", endpoint=hub.endpoint, cache_dir=tmp_path / "c2")
    assert Path(new).read_bytes() == new_config
    pinned = Path(snapshot_download(REPO, revision=first.oid, endpoint=hub.endpoint, cache_dir=tmp_path / "c3"))
    assert (pinned / "config.json").read_bytes() == files["config.json"]

    # Re-uploading unchanged content: the unchanged file is skipped and the known LFS object is not re-sent.
    puts = len([m for m, _ in hub.server.requests if m == "PUT"])
    api.upload_file(path_or_fileobj=files["onnx/model.onnx"], path_in_repo="copy.onnx", repo_id=REPO)
    assert len([m for m, _ in hub.server.requests if m == "PUT"]) == puts


def test_not_found_errors_map_to_client_exceptions(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub = hub_server
    api = hub.api()
    _small_repo(hub)
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/missing", "config.json", endpoint=hub.endpoint, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("user/missing")
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("user/missing", endpoint=hub.endpoint, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(REPO, "config.json", revision="v9", endpoint=hub.endpoint, cache_dir=tmp_path)
    with pytest.raises(RevisionNotFoundError):
        api.list_repo_tree(REPO, revision="f" * 40).__iter__().__next__()
    with pytest.raises(EntryNotFoundError) as err:
        hf_hub_download(REPO, "missing.bin", endpoint=hub.endpoint, cache_dir=tmp_path)
    assert isinstance(err.value, HfHubHTTPError)  # came from the server, not from the local cache


def test_bad_token_is_rejected_with_invalid_credentials(hub_server: HubFixture) -> None:  # noqa: F811
    hub = hub_server
    for token in ("hf_not_a_token", False):
        with pytest.raises(HfHubHTTPError) as err:
            hub.api(token).create_repo("user/other")
        assert "invalid credentials" in str(err.value).lower()
        assert not isinstance(err.value, RepositoryNotFoundError)
    _small_repo(hub)
    with pytest.raises(HfHubHTTPError) as err:
        hub.api("hf_not_a_token").upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id=REPO)
    assert "invalid credentials" in str(err.value).lower()
    assert len(hub.api().list_repo_commits(REPO)) == 2  # initial commit + config.json


def test_private_repo_is_unreadable_without_token(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub = hub_server
    _small_repo(hub, "user/secret", private=True)
    with pytest.raises(RepositoryNotFoundError):
        hub.api(False).model_info("user/secret")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("user/secret", "config.json", endpoint=hub.endpoint, token=False, cache_dir=tmp_path)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download("user/secret", endpoint=hub.endpoint, token=False, cache_dir=tmp_path)
    path = hf_hub_download("user/secret", "config.json", endpoint=hub.endpoint, token=hub.token, cache_dir=tmp_path)
    assert Path(path).read_bytes() == b'{"z_dim": 8}'


def test_corrupt_on_download_changes_bytes_but_not_metadata(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub = hub_server
    weights = os.urandom(4096)
    _small_repo(hub, **{"model.safetensors": weights})
    expected = hashlib.sha256(weights).hexdigest()
    hub.server.corrupt_file(REPO, "model.safetensors")
    bad = Path(hf_hub_download(REPO, "model.safetensors", endpoint=hub.endpoint, cache_dir=tmp_path / "a"))
    assert len(bad.read_bytes()) == len(weights) and bad.read_bytes() != weights
    assert hashlib.sha256(bad.read_bytes()).hexdigest() != expected
    tree = {f.path: f for f in hub.api().list_repo_tree(REPO)}
    assert tree["model.safetensors"].lfs.sha256 == expected  # the server still advertises the true hash
    hub.server.corrupt_file(REPO, "model.safetensors", enabled=False)
    good = Path(hf_hub_download(REPO, "model.safetensors", endpoint=hub.endpoint, cache_dir=tmp_path / "b"))
    assert good.read_bytes() == weights


def test_resolve_headers_range_and_resumed_download(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub = hub_server
    blob = os.urandom(3 * 1024 * 1024)
    sha = _small_repo(hub, **{"weights.bin": blob, "config.json": b"{}"})
    url = f"{hub.endpoint}/{REPO}/resolve/main/weights.bin"
    with urllib.request.urlopen(urllib.request.Request(url, method="HEAD")) as resp:
        assert resp.headers["X-Repo-Commit"] == sha
        assert resp.headers["ETag"] == f'"{hashlib.sha256(blob).hexdigest()}"'
        assert int(resp.headers["Content-Length"]) == len(blob)
    with urllib.request.urlopen(f"{hub.endpoint}/{REPO}/resolve/main/config.json") as resp:
        assert resp.headers["ETag"] == f'"{git_blob_sha1(b"{}")}"'
    with urllib.request.urlopen(urllib.request.Request(url, headers={"Range": "bytes=10-19"})) as resp:
        assert resp.status == 206 and resp.read() == blob[10:20]
        assert resp.headers["Content-Range"] == f"bytes 10-19/{len(blob)}"

    hub.server.drop_connection_once(REPO, "weights.bin", after_bytes=1024 * 1024)
    path = hf_hub_download(REPO, "weights.bin", endpoint=hub.endpoint, cache_dir=tmp_path)
    assert Path(path).read_bytes() == blob
    gets = [p for m, p in hub.server.requests if m == "GET" and p.endswith("/weights.bin")]
    assert len(gets) == 3  # the Range probe above, the cut download, the resumed one


def test_commit_deletions_and_parent_check(hub_server: HubFixture) -> None:  # noqa: F811
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    hub = hub_server
    api = hub.api()
    first = _small_repo(hub, **{"a/one.txt": b"1", "a/two.txt": b"2", "b.txt": b"b"})
    api.create_commit(REPO, [CommitOperationDelete("a/")], commit_message="drop a/")
    assert sorted(api.list_repo_files(REPO)) == [".gitattributes", "b.txt"]
    assert "a/one.txt" in api.list_repo_files(REPO, revision=first)
    with pytest.raises(EntryNotFoundError):
        api.delete_file("nope.txt", REPO)
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(REPO, [CommitOperationAdd("c.txt", b"c")], commit_message="c", parent_commit=first)
    assert err.value.response.status_code == 412
    api.create_branch(REPO, branch="dev", revision=first)
    api.create_tag(REPO, tag="v1", revision=first)
    assert api.model_info(REPO, revision="dev").sha == first == api.model_info(REPO, revision="v1").sha


def test_fixture_points_default_endpoint_at_server(hub_server: HubFixture, tmp_path: Path) -> None:  # noqa: F811
    hub = hub_server
    api = HfApi(token=hub.token)  # no endpoint=: what ModelHubMixin.push_to_hub does
    assert api.endpoint == hub.endpoint
    api.create_repo(REPO)
    api.upload_file(path_or_fileobj=b"hello", path_in_repo="hello.txt", repo_id=REPO)
    assert Path(hf_hub_download(REPO, "hello.txt")).read_bytes() == b"hello"
    assert str(hub.hf_home) in hf_hub_download(REPO, "hello.txt")


def test_mixin_push_to_hub_and_from_pretrained(hub_server: HubFixture) -> None:  # noqa: F811
    torch = pytest.importorskip("torch")
    pytest.importorskip("jinja2")
    from huggingface_hub import PyTorchModelHubMixin

    class Tiny(torch.nn.Module, PyTorchModelHubMixin):
        def __init__(self, width: int = 3):
            super().__init__()
            self.lin = torch.nn.Linear(width, 2)

    model = Tiny(width=5)
    model.push_to_hub(REPO, token=hub_server.token)
    loaded = Tiny.from_pretrained(REPO)
    assert loaded.lin.in_features == 5
    assert torch.equal(loaded.lin.weight, model.lin.weight)


def test_start_stop_and_context_manager() -> None:
    server = HubServer(tokens={"t"})
    endpoint = server.start()
    port = int(endpoint.rsplit(":", 1)[1])
    assert endpoint.startswith("http://127.0.0.1:") and port > 0
    with urllib.request.urlopen(f"{endpoint}/api/agent-harnesses") as resp:
        assert json.load(resp)["harnesses"] == {}
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    with HubServer() as hub:
        assert urllib.request.urlopen(f"{hub.endpoint}/api/agent-harnesses").status == 200
