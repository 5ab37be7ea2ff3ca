"""pull, sample, encode, export and push under ``strace -f -e trace=%file,%network``: every write lands in
the output folder or the Hugging Face cache, and every connection goes to the Hub endpoint.

Each command runs as a real process (with a temporary HOME and working folder) against the local test Hub,
which serves the catalogue's ``avb-zoo/toy-avb`` repo; strace records every file and network system call of
the process and its threads and children (skipped where strace is not installed). The same commands also run
under a Python audit hook, which needs no strace but sees only what Python code does.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from budget import budget
from hub_fixtures import TEST_TOKEN
from hub_server import HubServer

ROOT = Path(__file__).resolve().parent.parent
TOY = ROOT / "models" / "toy-avb"
STRACE = shutil.which("strace")
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")
PATH_CALLS = {"mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "symlink", "symlinkat", "link", "linkat"}
RENAMES = {"rename", "renameat", "renameat2"}
CHANGES = {"chmod", "fchmodat", "truncate", "utimensat", "setxattr", "lsetxattr"}
# devices a process may write to without writing a file
DEVICES = ("/dev/null", "/dev/tty", "/dev/pts/", "/dev/shm/", "/proc/self/", "/proc/thread-self/")
CALL = re.compile(r"^(?:\[pid\s+)?(\d+)\]?\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")
# a quoted path, with the directory descriptor before it where there is one (-y prints its path: 5</dir>)
QUOTED = re.compile(r'(?:(?:\d+|AT_FDCWD)(?:<([^>]*)>)?, )?"((?:[^"\\]|\\.)*)"')


def sandbox(tmp_path: Path, hub: HubServer) -> tuple[Path, Path, Path, Path, dict[str, str]]:
    """(home, cwd, out, hf cache, environment) of one contained run: a copy of the toy model without graphs in
    out/model, an input x.npy in cwd, and every place a process may write pointed inside tmp_path."""
    home, cwd, out, hf = (tmp_path / name for name in ("home", "cwd", "out", "hf"))
    for folder in (home, cwd, out, hf, out / "tmp"):
        folder.mkdir()
    shutil.copytree(TOY, out / "model", ignore=shutil.ignore_patterns("onnx"))
    np.save(cwd / "x.npy", np.eye(4, dtype=np.float32))
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": str(ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "HOME": str(home),
        "HF_HOME": str(hf),
        "HF_ENDPOINT": hub.endpoint,
        "HF_HUB_DISABLE_XET": "1",
        "HF_TOKEN": TEST_TOKEN,
        "TMPDIR": str(out / "tmp"),
    }
    return home, cwd, out, hf, env


def five_commands(out: Path, push_repo: str) -> dict[str, list[str]]:
    """pull, sample, encode, export and push, each writing inside ``out``."""
    model = str(out / "model")
    return {
        "pull": ["pull", "toy-avb", "--quiet"],
        "sample": ["sample", "toy-avb", "-n", "4", "--out", str(out / "g.png")],
        "encode": ["encode", "toy-avb", "x.npy", "--out", str(out / "z.npy")],
        "export": ["export", model, "--seed", "0"],
        "push": ["push", model, "--repo-id", push_repo],
    }


@pytest.fixture(scope="module")
def hub() -> Iterator[HubServer]:
    """A local Hub holding the catalogue's toy repo (avb-zoo/toy-avb), so ``pull toy-avb`` downloads it."""
    from huggingface_hub import HfApi

    from avb_zoo.hub.client import hub_settings as _hub_settings

    server = HubServer(tokens={TEST_TOKEN})
    endpoint = server.start()
    try:
        api = HfApi(endpoint=endpoint, token=TEST_TOKEN)
        with _hub_settings(endpoint=endpoint):
            api.create_repo("avb-zoo/toy-avb")
            api.upload_folder(repo_id="avb-zoo/toy-avb", folder_path=str(TOY))
        yield server
    finally:
        server.stop()


def _paths(call: str, args: str, cwd: Path) -> list[str]:
    """The paths a file call names, made absolute (``-y`` shows a directory descriptor's path)."""
    out = []
    for match in QUOTED.finditer(args):
        base, rel = match.group(1), match.group(2).encode().decode("unicode_escape")
        out.append(os.path.normpath(os.path.join(base or str(cwd), rel)))
    return out


def writes_and_connections(trace: str, cwd: Path) -> tuple[set[str], set[str]]:
    """(paths written, created, renamed or deleted; addresses connected to) in a strace log."""
    written: set[str] = set()
    connected: set[str] = set()
    for line in trace.splitlines():
        match = CALL.match(line)
        if match is None:
            continue
        call, args = match.group(2), match.group(3)
        failed = match.group(4) == "?" or match.group(4).startswith("-")
        if failed and call != "connect":  # a connection attempt counts even when it fails (or is in progress)
            continue
        if call in ("open", "openat", "openat2", "creat"):
            if call == "creat" or any(flag in args for flag in WRITE_FLAGS):
                written.update(_paths(call, args, cwd)[:1])
        elif call in ("symlink", "symlinkat", "link", "linkat"):
            written.update(_paths(call, args, cwd)[-1:])  # the new name; the first argument is the link's target
        elif call in PATH_CALLS or call in RENAMES or call in CHANGES:
            written.update(_paths(call, args, cwd))
        elif call == "connect" and ("AF_INET" in args):
            port = re.search(r"sin6?_port=htons\((\d+)\)", args)
            addr = re.search(r'inet_(?:addr|pton)\((?:AF_INET6, )?"([^"]+)"', args)
            connected.add(f"{addr.group(1) if addr else '?'}:{port.group(1) if port else '?'}")
    return written, connected


def outside(paths: set[str], allowed: list[Path]) -> list[str]:
    roots = [os.path.realpath(p) for p in allowed]
    return sorted(
        p
        for p in paths
        if not p.startswith(DEVICES)
        and not any(os.path.realpath(p) == r or os.path.realpath(p).startswith(r + os.sep) for r in roots)
    )


@pytest.mark.skipif(STRACE is None, reason="strace is not installed")
def test_commands_write_only_to_the_output_and_the_cache_and_talk_only_to_the_hub(
    hub: HubServer, tmp_path: Path
) -> None:
    home, cwd, out, hf, env = sandbox(tmp_path, hub)
    commands = five_commands(out, "user/traced")
    port = hub.endpoint.rsplit(":", 1)[1]
    problems = []
    for name, args in commands.items():
        log = tmp_path / f"{name}.strace"
        started = time.monotonic()
        done = subprocess.run(
            [STRACE, "-f", "--seccomp-bpf", "-y", "-qq", "-e", "trace=%file,%network", "-o", str(log)]
            + [sys.executable, "-m", "avb_zoo.cli", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=budget(300),
        )
        assert done.returncode == 0, (name, done.stderr[-2000:])
        print(f"{name}: {time.monotonic() - started:.1f} s under strace")
        written, connected = writes_and_connections(log.read_text(errors="replace"), cwd)
        stray = outside(written, [out, hf])
        foreign = sorted(c for c in connected if c != f"127.0.0.1:{port}")
        if stray or foreign:
            problems.append(f"{name}: writes {stray[:10]} connections {foreign}")
        if name in ("pull", "push"):
            assert f"127.0.0.1:{port}" in connected, f"{name} never reached the Hub"
    assert problems == []
    assert (out / "g.png").exists() and (out / "z.npy").exists() and (out / "model" / "onnx" / "encoder.onnx").exists()
    assert list(home.iterdir()) == [] and sorted(p.name for p in cwd.iterdir()) == ["x.npy"]


def test_the_trace_reader_sees_writes_deletes_and_connections(tmp_path: Path) -> None:
    trace = "\n".join(
        [
            '12 openat(AT_FDCWD</w>, "/etc/passwd", O_RDONLY|O_CLOEXEC) = 3</etc/passwd>',
            '12 openat(AT_FDCWD</w>, "notes.txt", O_WRONLY|O_CREAT|O_TRUNC, 0666) = 3</w/notes.txt>',
            '13 unlinkat(5</home/u/.ssh>, "id_rsa", 0) = 0',
            '13 renameat2(AT_FDCWD, "/w/a", AT_FDCWD, "/w/b", RENAME_NOREPLACE) = 0',
            '13 mkdir("/w/failed", 0777) = -1 EEXIST (File exists)',
            '13 symlink("../../blobs/abc", "/w/cache/link") = 0',
            '14 connect(7<socket:[1]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16)'
            " = -1 EINPROGRESS (Operation now in progress)",
        ]
    )
    written, connected = writes_and_connections(trace, tmp_path)
    assert written == {"/w/notes.txt", "/home/u/.ssh/id_rsa", "/w/a", "/w/b", "/w/cache/link"}
    assert connected == {"1.2.3.4:443"}


AUDIT_SCRIPT = r"""
import json, os, sys

WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
events = []


def hook(event, args):
    if event == "open":
        path, mode, flags = args
        if isinstance(path, (str, bytes, os.PathLike)) and (
            (isinstance(mode, str) and any(c in mode for c in "wax+")) or (isinstance(flags, int) and flags & WRITE)
        ):
            events.append(["write", os.path.abspath(os.fsdecode(path))])
    elif event in ("os.remove", "os.rmdir", "os.mkdir", "os.truncate", "shutil.rmtree") and args[-1] is None:
        events.append(["write", os.path.abspath(os.fsdecode(args[0]))])
    elif event in ("os.rename", "os.link", "os.symlink"):
        events.append(["write", os.path.abspath(os.fsdecode(args[1]))])
        if event == "os.rename":
            events.append(["write", os.path.abspath(os.fsdecode(args[0]))])
    elif event == "socket.connect":
        events.append(["connect", "%s:%s" % tuple(args[1][:2]) if isinstance(args[1], tuple) else str(args[1])])


sys.addaudithook(hook)
from avb_zoo.cli import main

for argv in json.loads(sys.argv[1]):
    main(argv, standalone_mode=False)
sys.stdout.write("\nEVENTS " + json.dumps(events) + "\n")
"""


def test_commands_under_an_audit_hook(hub: HubServer, tmp_path: Path) -> None:
    """The same check from inside Python (sys.addaudithook): runs where strace is missing, and sees what Python
    itself opens, removes, renames and connects to (not native code: the strace test covers that)."""
    import json

    home, cwd, out, hf, env = sandbox(tmp_path, hub)
    runs = list(five_commands(out, "user/audited").values())
    done = subprocess.run(
        [sys.executable, "-c", AUDIT_SCRIPT, json.dumps(runs)], cwd=cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    events = json.loads(done.stdout.rsplit("\nEVENTS ", 1)[1])
    written = {path for kind, path in events if kind == "write"}
    connected = {address for kind, address in events if kind == "connect"}
    assert written and outside(written, [out, hf]) == []
    assert connected == {f"127.0.0.1:{hub.endpoint.rsplit(':', 1)[1]}"}
    assert list(home.iterdir()) == [] and sorted(p.name for p in cwd.iterdir()) == ["x.npy"]
