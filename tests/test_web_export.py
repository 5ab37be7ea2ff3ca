"""avb-zoo export-web, serve and web-runtime without a browser: the folder, its checks, its failures."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading
import urllib.request

import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from web_fixtures import TOY, require_runtime, toy_copy

from avb_zoo.errors import WebError
from avb_zoo.web import vendor
from avb_zoo.web.serve import make_server


def export(*args: str):
    return CliRunner().invoke(main, ["export-web", *args])


@pytest.fixture
def runtime():
    require_runtime()


def test_export_writes_the_page_folder(runtime, tmp_path):
    out = tmp_path / "page"
    result = export(str(TOY), "--out", str(out))
    assert result.exit_code == 0, result.output
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == [
        "app.js",
        "index.html",
        "model/config.json",
        "model/encoder.onnx",
        "model/page.json",
        "model/sampler.onnx",
        "ort/ort-wasm-simd-threaded.mjs",
        "ort/ort-wasm-simd-threaded.wasm",
        "ort/ort.wasm.min.js",
        "png.js",
        "stream.js",
        "style.css",
    ]
    page = json.loads((out / "model/page.json").read_text())
    assert page["id"] == "toy-avb-v1" and page["latent_dim"] == 2 and page["noise_dim"] == 64
    assert page["image_shape"] == [1, 2, 2] and page["streams"] == {"prior": 1, "encoder_noise": 2}
    assert page["metrics"]["log_likelihood"] == json.loads((TOY / "metrics.json").read_text())["log_likelihood"]
    assert (out / "model/sampler.onnx").read_bytes() == (TOY / "onnx/sampler.onnx").read_bytes()
    for name, digest in vendor.ORT_WEB_FILES.items():
        assert hashlib.sha256((out / "ort" / name).read_bytes()).hexdigest() == digest
    html = (out / "index.html").read_text()
    assert "http://" not in html and "https://" not in html  # nothing from a CDN
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_export_replaces_its_own_folder_and_refuses_others(runtime, tmp_path):
    out = tmp_path / "page"
    assert export(str(TOY), "--out", str(out)).exit_code == 0
    (out / "stale.txt").write_text("from an older page")
    assert export(str(TOY), "--out", str(out)).exit_code == 0
    assert not (out / "stale.txt").exists()
    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    result = export(str(TOY), "--out", str(other))
    assert result.exit_code == 1 and "export-web did not write" in result.output
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_a_folder_without_graphs_fails_and_writes_nothing(runtime, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_bytes((TOY / "config.json").read_bytes())
    result = export(str(model), "--out", str(tmp_path / "page"))
    assert result.exit_code == 1
    assert result.output.startswith("error: ") and "has no onnx/sampler.onnx" in result.output
    assert not (tmp_path / "page").exists()


def test_graphs_that_do_not_match_the_config_fail(runtime, tmp_path):
    model = toy_copy(tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    config["latent_dim"] = 3
    (model / "config.json").write_text(json.dumps(config))
    result = export(str(model), "--out", str(tmp_path / "page"))
    assert result.exit_code == 1 and "another architecture than the folder's config.json" in result.output
    assert not (tmp_path / "page").exists()


def test_a_missing_encoder_fails(runtime, tmp_path):
    model = toy_copy(tmp_path / "model")
    (model / "onnx/encoder.onnx").unlink()
    result = export(str(model), "--out", str(tmp_path / "page"))
    assert result.exit_code == 1 and "has no onnx/encoder.onnx" in result.output


def test_a_posterior_sampler_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"x_dim": 0, "latent_dim": 10}))
    result = export(str(tmp_path), "--out", str(tmp_path / "page"))
    assert result.exit_code == 1 and "posterior sampler" in result.output


def test_an_unprepared_runtime_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv(vendor.ENV_DIR, str(tmp_path / "empty"))
    result = export(str(TOY), "--out", str(tmp_path / "page"))
    assert result.exit_code == 1 and "avb-zoo web-runtime" in result.output
    assert not (tmp_path / "page").exists()


def test_a_changed_runtime_file_is_refused(runtime, tmp_path, monkeypatch):
    folder = tmp_path / "ort"
    folder.mkdir()
    for name, data in vendor.runtime_files().items():
        (folder / name).write_bytes(data)
    (folder / "ort.wasm.min.js").write_bytes(b"/* not onnxruntime */")
    monkeypatch.setenv(vendor.ENV_DIR, str(folder))
    with pytest.raises(WebError, match="not the pinned onnxruntime-web"):
        vendor.runtime_files()


def _fake_tarball() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        data = b"console.log('hi')"
        info = tarfile.TarInfo("package/dist/ort.wasm.min.js")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_tarball_not_matching_npms_record_is_refused(tmp_path):
    with pytest.raises(WebError, match="differs from npm's record"):
        vendor.prepare(tmp_path / "ort", tarball=_fake_tarball())
    assert not (tmp_path / "ort").exists()


def test_prepare_keeps_an_intact_folder(runtime, tmp_path):
    folder = tmp_path / "ort"
    folder.mkdir()
    for name, data in vendor.runtime_files().items():
        (folder / name).write_bytes(data)
    assert vendor.prepare(folder, tarball=b"never read") == folder


def test_serve_binds_loopback_with_the_right_types(runtime, tmp_path):
    out = tmp_path / "page"
    assert export(str(TOY), "--out", str(out)).exit_code == 0
    for isolated in (False, True):
        server = make_server(out, 0, isolated)
        host, port = server.server_address[:2]
        assert host == "127.0.0.1"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ort/ort-wasm-simd-threaded.wasm") as r:
                assert r.headers["Content-Type"] == "application/wasm"
                assert (r.headers["Cross-Origin-Embedder-Policy"] == "require-corp") is isolated
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ort/ort-wasm-simd-threaded.mjs") as r:
                assert r.headers["Content-Type"] == "text/javascript"
        finally:
            server.shutdown()
            server.server_close()


def test_serve_reports_a_taken_port(runtime, tmp_path):
    blocker = make_server(tmp_path, 0)
    try:
        result = CliRunner().invoke(main, ["serve", str(TOY), "--port", str(blocker.server_address[1])])
        assert result.exit_code == 1 and "cannot serve on 127.0.0.1" in result.output
    finally:
        blocker.server_close()


def test_a_catalogue_id_exports_its_checked_files(runtime, tmp_path):
    """`toy-avb` resolves to the sha256-checked copy the package ships; the page carries its card metrics."""
    out = tmp_path / "page"
    result = export("toy-avb", "--out", str(out))
    assert result.exit_code == 0, result.output
    page = json.loads((out / "model/page.json").read_text())
    assert page["id"] == "toy-avb-v1" and "log_likelihood" in page["metrics"]
    assert (out / "model/encoder.onnx").read_bytes() == (TOY / "onnx/encoder.onnx").read_bytes()


def test_the_serve_command_serves_the_page_and_cleans_up_on_sigterm(runtime, tmp_path):
    """`avb-zoo serve ID` in its own process: writes the page to a temporary folder, prints its 127.0.0.1
    address, serves index.html; SIGTERM (what a service manager sends) removes the folder as Ctrl-C does."""
    import os
    import subprocess
    import sys

    temp = tmp_path / "tmp"
    temp.mkdir()
    command = [sys.executable, "-u", "-m", "avb_zoo.cli", "serve", str(TOY), "--port", "0"]
    env = {**os.environ, "TMPDIR": str(temp)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        assert "at http://127.0.0.1:" in line, line + process.stderr.read()
        url = line.split(" at ")[1].split()[0]
        with urllib.request.urlopen(url + "index.html", timeout=10) as response:
            assert b'<script src="app.js?v=' in response.read()
        with urllib.request.urlopen(url + "model/page.json", timeout=10) as response:
            assert json.load(response)["id"] == "toy-avb-v1"
        assert [p.name[:13] for p in temp.iterdir()] == ["avb-zoo-page-"]
    finally:
        process.terminate()  # SIGTERM
        process.wait(timeout=10)
    assert process.returncode == 130 and "interrupted" in process.stderr.read()
    assert list(temp.iterdir()) == []


@pytest.fixture
def served(runtime, tmp_path):
    """A page folder with links in and out of it, served; yields (folder, port)."""
    out = tmp_path / "site" / "page"
    assert export(str(TOY), "--out", str(out)).exit_code == 0
    (tmp_path / "secret.txt").write_text("outside the site")
    (out / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (out / "outside").symlink_to(tmp_path)
    (out / "inside.json").symlink_to(out / "model/page.json")
    server = make_server(out, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield out, server.server_address[1]
    server.shutdown()
    server.server_close()


def request(port: int, path: str, host: str | None = None, headers: dict | None = None):
    """(status, headers, body) of a raw GET; the request line goes out as given (no client-side cleaning)."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.putrequest("GET", path, skip_host=True)
    connection.putheader("Host", host if host is not None else f"127.0.0.1:{port}")
    for key, value in (headers or {}).items():
        connection.putheader(key, value)
    connection.endheaders()
    response = connection.getresponse()
    body = response.read()
    connection.close()
    return response.status, response.headers, body


@pytest.mark.parametrize(
    "path",
    [
        "/leak.txt",
        "/outside/secret.txt",
        "/outside/",
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/model/%2e%2e/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/%2E%2E%2Fsecret.txt",
        "//etc/passwd",
        "/model/../../secret.txt",
        "/%00index.html",
        "/..\\secret.txt",
    ],
)
def test_serve_never_leaves_the_folder(served, path):
    _, port = served
    status, headers, body = request(port, path)
    assert status == 404 and b"outside the site" not in body
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_serve_follows_links_that_stay_inside_and_lists_no_folder(served):
    _, port = served
    status, _, body = request(port, "/inside.json")
    assert status == 200 and json.loads(body)["id"] == "toy-avb-v1"
    status, _, body = request(port, "/model/")
    assert status == 404 and b"page.json" not in body  # a folder is never listed
    status, headers, _ = request(port, "/model")
    assert status == 301 and headers["Location"] == "/model/"
    status, _, body = request(port, "/")
    assert status == 200 and body.startswith(b"<!doctype html>")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "localhost:{port}", "127.0.0.1:1", ""])
def test_serve_answers_only_its_own_address(served, host):
    """A DNS name rebound to 127.0.0.1 arrives with its own Host: refused, so a page elsewhere reads nothing."""
    _, port = served
    status, _, body = request(port, "/model/page.json", host=host.format(port=port))
    assert status == 403 and b"toy-avb-v1" not in body


def test_serve_sends_security_headers_and_caches_by_content(served):
    folder, port = served
    status, headers, _ = request(port, "/index.html")
    assert status == 200 and headers["X-Content-Type-Options"] == "nosniff"
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self' 'wasm-unsafe-eval'" in csp
    assert "unsafe-inline" not in csp and "'unsafe-eval'" not in csp and "http" not in csp
    assert headers["Cache-Control"] == "no-store" and headers["ETag"]  # the page: always fresh
    page = json.loads((folder / "model/page.json").read_text())
    status, headers, _ = request(port, "/" + page["graphs"]["sampler"].split("?")[0])
    assert headers["Cache-Control"] == "no-cache"  # a graph without its hash: revalidated
    status, again, _ = request(port, "/model/sampler.onnx", headers={"If-None-Match": headers["ETag"]})
    assert status == 304 and again["ETag"] == headers["ETag"]
    for url in [*page["graphs"].values(), page["runtime"]["wasm"]]:  # the megabytes: kept for good
        status, headers, body = request(port, "/" + url)
        assert status == 200 and headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert hashlib.sha256(body).hexdigest().startswith(url.split("?v=")[1])
    status, headers, _ = request(port, "/model/sampler.onnx?v=0123456789abcdef")  # not this file's hash
    assert status == 200 and headers["Cache-Control"] == "no-cache"
    status, headers, _ = request(port, "/" + page["runtime"]["mjs"])
    assert status == 200 and headers["Cache-Control"] == "no-store"
    html = (folder / "index.html").read_text()
    for name in ("style.css", "stream.js", "png.js", "ort/ort.wasm.min.js", "app.js"):
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()[:16]
        assert f'"{name}?v={digest}"' in html
