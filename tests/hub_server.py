"""A Hub-compatible HTTP server for tests: the real ``huggingface_hub`` client pushes to and pulls from it.

Stdlib only (``http.server``), in memory, bound to 127.0.0.1 on a free port. It implements the endpoints
that ``HfApi.create_repo / upload_folder / upload_file / create_commit / model_info / list_repo_tree``,
``hf_hub_download`` and ``snapshot_download`` call, with
real commits: every commit has a sha, branches point to commits and old commits stay resolvable by full
or short sha.

Client settings needed: ``HF_HUB_DISABLE_XET=1`` (or ``huggingface_hub.constants.HF_HUB_DISABLE_XET =
True``) and ``endpoint=`` passed explicitly (``HF_ENDPOINT`` is frozen at import).
``tests/hub_fixtures.py`` does both.

Usage::

    with HubServer(tokens={"hf_test_write"}) as hub:
        api = HfApi(endpoint=hub.endpoint, token="hf_test_write")
        hub.corrupt_file("user/repo", "model.safetensors")   # flip a byte of that file in every GET
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["HubServer", "INVALID_CREDENTIALS", "LFS_SUFFIXES", "git_blob_sha1", "lfs_pointer"]

INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
LFS_THRESHOLD = 10 * 1024 * 1024
# Suffixes the Hub's default .gitattributes sends through LFS (shortened list).
LFS_SUFFIXES = tuple(
    "." + suffix
    for suffix in (
        "7z arrow bin bz2 ckpt ftz gz h5 joblib mlmodel model msgpack npy npz onnx ot parquet pb "
        "pickle pkl pt pth rar safetensors tar tflite tgz wasm xz zip zst"
    ).split()
)
REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA_PREFIX_RE = re.compile(r"^[0-9a-f]{7,40}$")
_OID_RE = re.compile(r"^[0-9a-f]{64}$")


def git_blob_sha1(data: bytes) -> str:
    """Git blob id of ``data``: ``sha1(b"blob <len>\\0" + data)``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(oid: str, size: int) -> bytes:
    """Text of the git-lfs pointer file for an object."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n".encode()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class StoredFile:
    """One file in a commit: inline bytes (regular) or a reference into the LFS store."""

    size: int
    oid: str  # git blob sha1 (of the pointer for LFS files)
    data: bytes | None = None
    lfs_oid: str | None = None  # sha256 of the content for LFS files

    @property
    def etag(self) -> str:
        """ETag the Hub sends: sha256 for LFS files, git blob sha1 otherwise."""
        return self.lfs_oid or self.oid

    def entry(self, path: str) -> dict[str, Any]:
        """Tree-listing entry."""
        out: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs_oid is not None:
            pointer_size = len(lfs_pointer(self.lfs_oid, self.size))
            out["lfs"] = {"oid": self.lfs_oid, "size": self.size, "pointerSize": pointer_size}
        return out


@dataclass
class Commit:
    """An immutable snapshot of the repo's files."""

    sha: str
    parent: str | None
    title: str
    message: str
    date: str
    files: dict[str, StoredFile]


@dataclass
class Repo:
    """A repository: commits by sha, branches and tags pointing to commits."""

    repo_type: str
    repo_id: str
    private: bool
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class HubError(Exception):
    """An HTTP error reply; ``code`` becomes the ``X-Error-Code`` header the client maps to exceptions."""

    def __init__(self, status: int, message: str, code: str | None = None, commit: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.commit = status, message, code, commit


@dataclass
class _Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop_after: int | None = None  # send only this many body bytes, then close the connection
    stall: float = 0.0  # seconds to wait after the headers, before the body


def _json(obj: Any, status: int = 200, content_type: str = "application/json") -> _Reply:
    return _Reply(status, json.dumps(obj).encode(), {"Content-Type": content_type})


class HubServer:
    """In-memory Hub: ``HubServer(tokens={"hf_test_write"}).start()`` returns the endpoint URL.

    ``tokens`` are the valid write tokens. Reads of public repos need none; a request carrying an unknown
    token is refused with 401 "Invalid credentials in Authorization header", like the real Hub.
    Misbehaviour for tests: ``corrupt_file`` (flip one byte of a file in every GET, size and ETag unchanged)
    and ``drop_connection_once`` (cut the next GET of a file after N bytes, so the client resumes with a
    Range request); for fault tests ``fail_requests`` (answer every matching request with a status),
    ``drop_connection_always`` (cut every GET of a file) and ``stall_file`` (wait before sending a file's
    body). ``requests`` records ``(method, path)`` of every request.
    """

    def __init__(
        self,
        tokens: Iterable[str] = ("hf_test_write",),
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        username: str = "user",
        lfs_threshold: int = LFS_THRESHOLD,
        gitattributes: bool = True,
    ):
        self.tokens = set(tokens)
        self.host, self.port, self.username = host, port, username
        self.lfs_threshold = lfs_threshold
        self.gitattributes = gitattributes
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs_objects: dict[str, bytes] = {}
        self.corrupted: set[tuple[str, str, str]] = set()
        self.drop_once: dict[tuple[str, str, str], int] = {}
        self.drop_always: dict[tuple[str, str, str], int] = {}
        self.stalled: dict[tuple[str, str, str], float] = {}
        self.failing: tuple[int, str] | None = None
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self._seq = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------------------------------- lifecycle
    @property
    def endpoint(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321``."""
        if self._httpd is None:
            raise RuntimeError("HubServer is not running")
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    def start(self) -> str:
        """Bind, serve in a daemon thread, and return the endpoint URL."""
        if self._httpd is None:
            self._httpd = _HTTPServer((self.host, self.port), _Handler, self)
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="hub-server", daemon=True
            )
            self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop serving, close idle keep-alive connections and the listening socket."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with httpd.conn_lock:
            conns = list(httpd.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------------------- test helpers
    def corrupt_file(self, repo_id: str, path: str, *, repo_type: str = "model", enabled: bool = True) -> None:
        """Flip one byte of ``path`` in every GET (all revisions); size, ETag and tree oids unchanged."""
        key = (repo_type, repo_id, path)
        with self._lock:
            (self.corrupted.add if enabled else self.corrupted.discard)(key)

    def drop_connection_once(self, repo_id: str, path: str, after_bytes: int, *, repo_type: str = "model") -> None:
        """Cut the next GET of ``path`` after ``after_bytes`` bytes (Content-Length still announces all)."""
        with self._lock:
            self.drop_once[(repo_type, repo_id, path)] = after_bytes

    def fail_requests(self, status: int | None, path_contains: str = "") -> None:
        """Answer every request whose path contains ``path_contains`` with ``status`` (None: stop failing)."""
        with self._lock:
            self.failing = None if status is None else (status, path_contains)

    def drop_connection_always(self, repo_id: str, path: str, after_bytes: int, *, repo_type: str = "model") -> None:
        """Cut every GET of ``path`` after ``after_bytes`` bytes: a download that never completes."""
        with self._lock:
            self.drop_always[(repo_type, repo_id, path)] = after_bytes

    def stall_file(self, repo_id: str, path: str, seconds: float, *, repo_type: str = "model") -> None:
        """Wait ``seconds`` after the headers of every GET of ``path``, before its body: a stalled download."""
        with self._lock:
            self.stalled[(repo_type, repo_id, path)] = seconds

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        """Server-side state of a repo (for assertions)."""
        return self.repos[(repo_type, repo_id)]

    # ---------------------------------------------------------------------------------------- dispatch
    def handle(self, method: str, raw_path: str, headers: Any, body: bytes) -> _Reply:
        """Route one request; errors become replies with ``X-Error-Code`` / ``X-Error-Message``."""
        url = urlsplit(raw_path)
        query = parse_qs(url.query)
        segs = [unquote(s) for s in url.path.split("/")[1:]]
        with self._lock:
            self.requests.append((method, url.path))
            failing = self.failing
        if failing is not None and failing[1] in url.path:
            message = f"injected failure {failing[0]}"
            return _Reply(failing[0], json.dumps({"error": message}).encode(), {"X-Error-Message": message})
        try:
            if method == "PUT" and len(segs) == 2 and segs[0] == "_lfs":
                return self._lfs_put(segs[1], query, body)  # presigned: no auth
            token = self._token(headers.get("Authorization"))
            with self._lock:
                try:
                    return self._route(method, segs, query, token, body, headers.get("Range"))
                except (KeyError, TypeError, ValueError) as err:  # bad JSON / base64 / missing field
                    raise HubError(400, f"Malformed request: {type(err).__name__}: {err}") from err
        except HubError as err:
            reply = _json({"error": err.message}, err.status)
            reply.headers["X-Error-Message"] = err.message
            if err.code:
                reply.headers["X-Error-Code"] = err.code
            if err.commit:
                reply.headers["X-Repo-Commit"] = err.commit
            return reply

    def _token(self, authorization: str | None) -> str | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise HubError(401, INVALID_CREDENTIALS)
        return token.strip()

    def _route(
        self,
        method: str,
        segs: list[str],
        query: dict[str, list[str]],
        token: str | None,
        body: bytes,
        range_header: str | None,
    ) -> _Reply:
        if segs[:1] == ["api"] and len(segs) >= 2:
            rest = segs[1:]
            if rest == ["repos", "create"] and method == "POST":
                return self._create_repo(token, _load(body))
            if rest == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo(token, _load(body))
            if rest == ["validate-yaml"] and method == "POST":
                return _json({"errors": [], "warnings": []})
            if rest == ["whoami-v2"] and method == "GET":
                return self._whoami(token)
            if rest == ["agent-harnesses"] and method == "GET":
                return _json({"standardEnvVars": [], "harnesses": {}})
            if rest[0] in REPO_TYPES and len(rest) >= 3:
                rtype, repo_id, action = REPO_TYPES[rest[0]], f"{rest[1]}/{rest[2]}", rest[3:]
                return self._repo_api(method, rtype, repo_id, action, query, token, body)
            if rest[0] in REPO_TYPES:  # a repo id without namespace: never created here
                raise HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        # Git / file routes: [datasets|spaces/]ns/name/...
        rtype = "model"
        if segs and segs[0] in ("datasets", "spaces") and len(segs) > 3:
            rtype, segs = REPO_TYPES[segs[0]], segs[1:]
        if len(segs) >= 4 and segs[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(
                method == "HEAD",
                rtype,
                f"{segs[0]}/{segs[1]}",
                segs[3],
                "/".join(segs[4:]),
                token,
                range_header,
            )
        if len(segs) >= 3 and segs[1] == "resolve":  # a repo id without namespace
            raise HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        if len(segs) == 6 and segs[1].endswith(".git") and segs[2:] == ["info", "lfs", "objects", "batch"]:
            if method == "POST":
                return self._lfs_batch(rtype, f"{segs[0]}/{segs[1][:-4]}", token, _load(body))
        raise HubError(404, f"Not found: {method} /{'/'.join(segs)}")

    def _repo_api(
        self,
        method: str,
        rtype: str,
        repo_id: str,
        action: list[str],
        query: dict[str, list[str]],
        token: str | None,
        body: bytes,
    ) -> _Reply:
        head = action[0] if action else ""
        rev = "/".join(action[1:]) or "main"
        if method == "GET" and not action:
            return self._info(rtype, repo_id, "main", token)
        if method == "GET" and head == "revision":
            return self._info(rtype, repo_id, rev, token)
        if method == "GET" and head == "tree" and len(action) >= 2:
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            return self._tree(rtype, repo_id, action[1], "/".join(action[2:]), recursive, token)
        if method == "GET" and head == "commits":
            return self._commits(rtype, repo_id, rev, token)
        if method == "GET" and head == "refs":
            return self._refs(rtype, repo_id, token)
        if method == "POST" and head == "preupload":
            return self._preupload(rtype, repo_id, rev, token, _load(body))
        if method == "POST" and head == "commit":
            if query.get("create_pr", ["0"])[0] not in ("0", "false", ""):
                raise HubError(400, "Pull requests are not supported by the test Hub server")
            return self._commit(rtype, repo_id, rev, token, body)
        if method in ("POST", "DELETE") and head in ("branch", "tag") and len(action) >= 2:
            return self._ref_op(method, head, rtype, repo_id, rev, token, _load(body))
        if method == "PUT" and head == "settings":
            return self._settings(rtype, repo_id, token, _load(body))
        if head in ("xet-write-token", "xet-read-token"):
            raise HubError(400, "The test Hub server has no Xet storage: set HF_HUB_DISABLE_XET=1")
        raise HubError(404, f"Not found: {method} /api/{rtype}s/{repo_id}/{'/'.join(action)}")

    # ------------------------------------------------------------------------------------- repo access
    def _read_repo(self, rtype: str, repo_id: str, token: str | None) -> Repo:
        repo = self.repos.get((rtype, repo_id))
        if repo is None or (repo.private and token is None):
            raise HubError(401 if token is None else 404, "Repository not found", "RepoNotFound")
        return repo

    def _write_repo(self, rtype: str, repo_id: str, token: str | None) -> Repo:
        if token is None:
            raise HubError(401, INVALID_CREDENTIALS)
        return self._read_repo(rtype, repo_id, token)

    @staticmethod
    def _commit_at(repo: Repo, rev: str) -> Commit:
        sha = repo.branches.get(rev) or repo.tags.get(rev)
        if sha is None and rev.startswith(("refs/heads/", "refs/tags/")):
            sha = (repo.branches if rev.startswith("refs/heads/") else repo.tags).get(rev.split("/", 2)[2])
        if sha is None and _SHA_PREFIX_RE.match(rev):
            matches = [s for s in repo.commits if s.startswith(rev)]
            sha = matches[0] if len(matches) == 1 else None
        if sha is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        return repo.commits[sha]

    def _url(self, repo: Repo) -> str:
        return f"{self.endpoint}/{URL_PREFIXES[repo.repo_type]}{repo.repo_id}"

    # ----------------------------------------------------------------------------------------- handlers
    def _whoami(self, token: str | None) -> _Reply:
        if token is None:
            raise HubError(401, INVALID_CREDENTIALS)
        access = {"displayName": "test", "role": "write"}
        return _json(
            {
                "type": "user",
                "name": self.username,
                "fullname": self.username,
                "orgs": [],
                "auth": {"type": "access_token", "accessToken": access},
            }
        )

    def _create_repo(self, token: str | None, payload: dict[str, Any]) -> _Reply:
        if token is None:
            raise HubError(401, INVALID_CREDENTIALS)
        name, org = str(payload.get("name") or ""), payload.get("organization") or self.username
        rtype = payload.get("type") or "model"
        if not _NAME_RE.match(name) or not _NAME_RE.match(str(org)) or rtype not in URL_PREFIXES:
            raise HubError(400, f"Invalid repo name or type: {org}/{name} ({rtype})")
        key = (rtype, f"{org}/{name}")
        if key in self.repos:
            reply = _json({"error": f"You already created this {rtype} repo", "url": self._url(self.repos[key])}, 409)
            reply.headers["X-Error-Message"] = f"You already created this {rtype} repo"
            return reply
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        repo = Repo(rtype, key[1], private, _now())
        files: dict[str, StoredFile] = {}
        if self.gitattributes:
            text = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES).encode()
            files[".gitattributes"] = StoredFile(len(text), git_blob_sha1(text), data=text)
        self._new_commit(repo, "main", None, "initial commit", "", files)
        self.repos[key] = repo
        return _json({"url": self._url(repo), "name": key[1], "id": key[1]})

    def _delete_repo(self, token: str | None, payload: dict[str, Any]) -> _Reply:
        org = payload.get("organization") or self.username
        rtype = payload.get("type") or "model"
        self._write_repo(rtype, f"{org}/{payload.get('name')}", token)
        del self.repos[(rtype, f"{org}/{payload.get('name')}")]
        return _json({})

    def _settings(self, rtype: str, repo_id: str, token: str | None, payload: dict[str, Any]) -> _Reply:
        repo = self._write_repo(rtype, repo_id, token)
        if "private" in payload:
            repo.private = bool(payload["private"])
        if "visibility" in payload:
            repo.private = payload["visibility"] == "private"
        return _json({})

    def _info(self, rtype: str, repo_id: str, rev: str, token: str | None) -> _Reply:
        repo = self._read_repo(rtype, repo_id, token)
        commit = self._commit_at(repo, rev)
        siblings = []
        for path, f in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path, "size": f.size, "blobId": f.oid}
            if f.lfs_oid:
                sib["lfs"] = {
                    "sha256": f.lfs_oid,
                    "size": f.size,
                    "pointerSize": len(lfs_pointer(f.lfs_oid, f.size)),
                }
            siblings.append(sib)
        return _json(
            {
                "_id": hashlib.sha1(repo_id.encode()).hexdigest()[:24],
                "id": repo_id,
                "author": repo_id.split("/")[0],
                "sha": commit.sha,
                "lastModified": commit.date,
                "createdAt": repo.created_at,
                "private": repo.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "tags": [],
                "siblings": siblings,
                "usedStorage": sum(f.size for f in commit.files.values()),
            }
        )

    def _tree(self, rtype: str, repo_id: str, rev: str, path: str, recursive: bool, token: str | None) -> _Reply:
        repo = self._read_repo(rtype, repo_id, token)
        commit = self._commit_at(repo, rev)
        prefix = path.strip("/")
        dirs: dict[str, list[str]] = {}
        for p, f in commit.files.items():
            parts = p.split("/")
            for i in range(1, len(parts)):
                dirs.setdefault("/".join(parts[:i]), []).append(f"{p}:{f.oid}")
        if prefix and prefix not in dirs:
            raise HubError(404, f"Entry not found: {prefix}", "EntryNotFound", commit.sha)

        def wanted(p: str) -> bool:
            if prefix and not p.startswith(prefix + "/"):
                return False
            return recursive or p.rpartition("/")[0] == prefix

        entries: list[dict[str, Any]] = [
            {
                "type": "directory",
                "oid": hashlib.sha1("\n".join(sorted(v)).encode()).hexdigest(),
                "size": 0,
                "path": d,
            }
            for d, v in sorted(dirs.items())
            if wanted(d)
        ]
        entries += [f.entry(p) for p, f in sorted(commit.files.items()) if wanted(p)]
        return _json(entries)

    def _commits(self, rtype: str, repo_id: str, rev: str, token: str | None) -> _Reply:
        repo = self._read_repo(rtype, repo_id, token)
        commit: Commit | None = self._commit_at(repo, rev)
        out = []
        while commit is not None:
            out.append(
                {
                    "id": commit.sha,
                    "title": commit.title,
                    "message": commit.message,
                    "date": commit.date,
                    "authors": [{"user": self.username}],
                }
            )
            commit = repo.commits.get(commit.parent) if commit.parent else None
        return _json(out)

    def _refs(self, rtype: str, repo_id: str, token: str | None) -> _Reply:
        repo = self._read_repo(rtype, repo_id, token)

        def refs(kind: str, table: dict[str, str]) -> list[dict[str, str]]:
            return [{"name": n, "ref": f"refs/{kind}/{n}", "targetCommit": s} for n, s in sorted(table.items())]

        return _json(
            {
                "branches": refs("heads", repo.branches),
                "tags": refs("tags", repo.tags),
                "converts": [],
                "pullRequests": [],
            }
        )

    def _ref_op(
        self,
        method: str,
        kind: str,
        rtype: str,
        repo_id: str,
        name: str,
        token: str | None,
        payload: dict[str, Any],
    ) -> _Reply:
        repo = self._write_repo(rtype, repo_id, token)
        if method == "DELETE":
            table = repo.branches if kind == "branch" else repo.tags
            if name not in table or (kind == "branch" and name == "main"):
                raise HubError(404, f"Invalid rev id: {name}", "RevisionNotFound")
            del table[name]
            return _json({})
        if kind == "branch":  # POST /branch/{branch} {startingPoint}
            if name in repo.branches:
                raise HubError(409, f"Branch {name} already exists")
            repo.branches[name] = self._commit_at(repo, payload.get("startingPoint") or "main").sha
        else:  # POST /tag/{revision} {tag}
            tag = str(payload.get("tag") or "")
            if not tag or tag in repo.tags:
                raise HubError(409, f"Tag {tag} already exists")
            repo.tags[tag] = self._commit_at(repo, name).sha
        return _json({})

    def _upload_mode(self, path: str, size: int, sample: bytes) -> str:
        if size == 0:
            return "regular"
        binary = path.lower().endswith(LFS_SUFFIXES) or b"\0" in sample
        return "lfs" if size >= self.lfs_threshold or binary else "regular"

    def _preupload(self, rtype: str, repo_id: str, rev: str, token: str | None, payload: dict[str, Any]) -> _Reply:
        repo = self._write_repo(rtype, repo_id, token)
        if rev not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        current = repo.commits[repo.branches[rev]].files
        out = []
        for item in payload.get("files") or []:
            path, size = str(item["path"]), int(item.get("size") or 0)
            sample = base64.b64decode(item.get("sample") or "")
            existing = current.get(path)
            out.append(
                {
                    "path": path,
                    "uploadMode": self._upload_mode(path, size, sample),
                    "shouldIgnore": False,
                    "oid": existing.etag if existing else None,
                }
            )
        return _json({"files": out, "commitOid": repo.branches[rev]})

    def _lfs_batch(self, rtype: str, repo_id: str, token: str | None, payload: dict[str, Any]) -> _Reply:
        self._write_repo(rtype, repo_id, token)
        if payload.get("operation") != "upload":
            raise HubError(400, "The test Hub server only supports LFS uploads")
        objects = []
        for obj in payload.get("objects") or []:
            oid, size = str(obj.get("oid")), int(obj.get("size") or 0)
            entry: dict[str, Any] = {"oid": oid, "size": size}
            if not _OID_RE.match(oid):
                entry["error"] = {"code": 422, "message": f"Invalid oid {oid}"}
            elif oid not in self.lfs_objects:
                entry["authenticated"] = True
                entry["actions"] = {"upload": {"href": f"{self.endpoint}/_lfs/{oid}?size={size}", "expires_in": 3600}}
            objects.append(entry)
        return _json({"transfer": "basic", "objects": objects}, content_type="application/vnd.git-lfs+json")

    def _lfs_put(self, oid: str, query: dict[str, list[str]], body: bytes) -> _Reply:
        if hashlib.sha256(body).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match sha256 {oid}")
        if "size" in query and int(query["size"][0]) != len(body):
            raise HubError(400, f"Uploaded size {len(body)} does not match {query['size'][0]}")
        with self._lock:
            self.lfs_objects[oid] = body
        return _Reply(200, b"", {"ETag": f'"{oid}"'})

    def _commit(self, rtype: str, repo_id: str, rev: str, token: str | None, body: bytes) -> _Reply:
        repo = self._write_repo(rtype, repo_id, token)
        if rev not in repo.branches:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        head = repo.branches[rev]
        files = dict(repo.commits[head].files)
        header: dict[str, Any] = {}
        for line in body.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value") or {}
            path = str(value.get("path", "")).strip("/") if key != "header" else ""
            if key != "header" and (not path or ".." in path.split("/")):
                raise HubError(400, f"Invalid path in commit: {value.get('path')!r}")
            if key == "header":
                header = value
            elif key == "file":
                raw = value.get("content", "")
                data = base64.b64decode(raw) if value.get("encoding", "base64") == "base64" else raw.encode()
                files[path] = StoredFile(len(data), git_blob_sha1(data), data=data)
            elif key == "lfsFile":
                oid, size = str(value.get("oid")), int(value.get("size") or 0)
                stored = self.lfs_objects.get(oid)
                if stored is None or len(stored) != size:
                    raise HubError(422, f"LFS object {oid} ({path}) was not uploaded")
                files[path] = StoredFile(size, git_blob_sha1(lfs_pointer(oid, size)), lfs_oid=oid)
            elif key == "deletedFile":
                if files.pop(path, None) is None:
                    raise HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound", head)
            elif key == "deletedFolder":
                doomed = [p for p in files if p.startswith(path + "/")]
                if not doomed:
                    raise HubError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound", head)
                for p in doomed:
                    del files[p]
            else:
                raise HubError(400, f"Unsupported commit operation: {key!r}")
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        sha = self._new_commit(
            repo,
            rev,
            head,
            str(header.get("summary") or "commit"),
            str(header.get("description") or ""),
            files,
        )
        return _json(
            {
                "success": True,
                "commitOid": sha,
                "commitUrl": f"{self._url(repo)}/commit/{sha}",
                "hookOutput": "",
                "pullRequestUrl": None,
            }
        )

    def _new_commit(
        self,
        repo: Repo,
        branch: str,
        parent: str | None,
        title: str,
        message: str,
        files: dict[str, StoredFile],
    ) -> str:
        self._seq += 1
        tree = {p: f.oid for p, f in sorted(files.items())}
        blob = json.dumps({"parent": parent, "title": title, "message": message, "tree": tree, "seq": self._seq})
        sha = hashlib.sha1(f"{repo.repo_type}/{repo.repo_id}\n{blob}".encode()).hexdigest()
        repo.commits[sha] = Commit(sha, parent, title, message, _now(), files)
        repo.branches[branch] = sha
        return sha

    def _resolve(
        self,
        head_only: bool,
        rtype: str,
        repo_id: str,
        rev: str,
        path: str,
        token: str | None,
        range_header: str | None,
    ) -> _Reply:
        repo = self._read_repo(rtype, repo_id, token)
        commit = self._commit_at(repo, rev)
        f = commit.files.get(path)
        if f is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound", commit.sha)
        data = f.data if f.data is not None else self.lfs_objects[f.lfs_oid or ""]
        key = (rtype, repo_id, path)
        drop_after = None
        if not head_only:
            if key in self.corrupted and data:
                mid = len(data) // 2
                data = data[:mid] + bytes([data[mid] ^ 0xFF]) + data[mid + 1 :]
            drop_after = self.drop_once.pop(key, self.drop_always.get(key))
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{f.etag}"',
            "X-Repo-Commit": commit.sha,
            "Accept-Ranges": "bytes",
        }
        if f.lfs_oid:
            headers["X-Linked-Size"] = str(f.size)
        status, total = 200, len(data)
        if range_header:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header.strip())
            if m is None or m.group(1) == m.group(2) == "":
                raise HubError(416, f"Invalid range {range_header}")
            if m.group(1):
                start, end = int(m.group(1)), int(m.group(2)) if m.group(2) else total - 1
            else:
                start, end = max(total - int(m.group(2)), 0), total - 1
            if start >= total:
                return _Reply(416, b"", {"Content-Range": f"bytes */{total}"})
            end = min(end, total - 1)
            data, status = data[start : end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        return _Reply(status, data, headers, drop_after, 0.0 if head_only else self.stalled.get(key, 0.0))


def _load(body: bytes) -> dict[str, Any]:
    """Parse a JSON request body ({} when empty)."""
    if not body.strip():
        return {}
    try:
        out = json.loads(body)
    except ValueError as err:
        raise HubError(400, f"Invalid JSON body: {err}") from err
    if not isinstance(out, dict):
        raise HubError(400, "JSON body must be an object")
    return out


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], hub: HubServer):
        self.hub = hub
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every reply carries Content-Length
    server_version = "avb-zoo-test-hub/1"
    timeout = 60
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.conn_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.conn_lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        """Silence the default stderr access log."""

    def _read_body(self) -> bytes:
        """Read the whole request body (Content-Length or chunked), so keep-alive stays in sync."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        body = self._read_body()
        method = self.command
        try:
            reply = self.server.hub.handle(method, self.path, self.headers, body)
        except Exception as err:  # a server bug: report it rather than hang the client
            msg = f"test hub server error: {type(err).__name__}: {err}"
            reply = _Reply(500, json.dumps({"error": msg}).encode(), {"X-Error-Message": msg[:500]})
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.drop_after is not None:
            self.send_header("Connection", "close")
        self.end_headers()
        if reply.stall:
            self.wfile.flush()
            time.sleep(reply.stall)
        try:
            if method != "HEAD":
                self.wfile.write(reply.body if reply.drop_after is None else reply.body[: reply.drop_after])
            self.wfile.flush()
        except OSError:
            self.close_connection = True
        if reply.drop_after is not None:
            self.close_connection = True
            time.sleep(0.05)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = _serve
