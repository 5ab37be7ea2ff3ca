"""The README's and docs/ pages' code against the current code.

Every fenced block names its language. Every shell block is checked: the README's first-hour block runs as
written, top to bottom, in a fresh folder (slow; MNIST from a local mirror of the committed subset, whose md5
sums stand in for the published ones); every other ``avb-zoo`` line is parsed by the command line; a block with
any other command carries ``<!-- not-run: REASON -->`` on the line right above its fence, and the scripts,
test files and modules it names must exist (with the options it gives them). Every Python block runs, unless
it is marked the same way (then it must compile). Links and images point at files that exist, and the API
page lists the public API.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from mnist_mirror import SUBSET, serve, subset_as_mnist

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
API_PAGE = DOCS / "api.md"
FIRST_HOUR = "<!-- readme-test: first-hour"
NOT_RUN = re.compile(r"^<!-- not-run: (?P<reason>\S.*?) -->$")
SHELL = {"bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^(?P<indent> *)```(?P<lang>[^`\s]*)\s*$")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, from 1
    lang: str
    before: str  # the line right above the fence, stripped
    text: str

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def not_run(self) -> str | None:
        """The reason given by a ``<!-- not-run: REASON -->`` line right above the fence, or None."""
        found = NOT_RUN.match(self.before)
        return found["reason"] if found else None


def pages() -> list[Path]:
    return [README, *sorted(DOCS.rglob("*.md"))]


def code_blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page``, indented ones (inside list items) included."""
    lines = page.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
        assert end is not None, f"{page.relative_to(ROOT)}:{i + 1}: a code fence that is never closed"
        indent = opening["indent"]
        body = "\n".join(line.removeprefix(indent) for line in lines[i + 1 : end])
        before = lines[i - 1].strip() if i else ""
        blocks.append(Block(page, i + 1, opening["lang"], before, body))
        i = end + 1
    return blocks


def all_blocks(*langs: str) -> list[Block]:
    return [b for page in pages() for b in code_blocks(page) if not langs or b.lang in langs]


def shell_commands(block: str) -> list[list[str]]:
    """Every command of a shell block as words: continuations joined, ``&&`` and ``||`` chains split, comments and
    leading VAR=value assignments dropped."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in re.split(r"&&|\|\|", line):
            words = shlex.split(part, comments=True)
            while words and ENV.match(words[0]):
                words = words[1:]
            if words:
                out.append(words)
    return out


def is_avb_zoo(words: list[str]) -> bool:
    return words[0] == "avb-zoo" or words[0].endswith("/avb-zoo")


def commands(block: str) -> list[list[str]]:
    """The ``avb-zoo`` commands of a block as argument lists (without the program's name)."""
    return [words[1:] for words in shell_commands(block) if is_avb_zoo(words)]


def is_synopsis(args: list[str]) -> bool:
    """A synopsis ([--option], a|b, ...) rather than a command to run."""
    return any("[" in a or "..." in a or "|" in a for a in args)


def parse(args: list[str]) -> None:
    """Parse ``args`` as the command line would (groups included), without running anything."""
    command: click.Command = main
    ctx = None
    while True:
        ctx = command.make_context("avb-zoo", list(args), parent=ctx, resilient_parsing=False)
        if not isinstance(command, click.Group):
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 still parses into protected_args
            rest = [*ctx.protected_args, *ctx.args]
        name, command, args = command.resolve_command(ctx, rest)
        assert command is not None, name


def test_every_code_block_names_its_language():
    unnamed = [b.where for b in all_blocks() if not b.lang]
    assert not unnamed, f"code blocks without a language (```text for output): {unnamed}"


def test_every_shell_block_is_run_parsed_or_marked():
    """A shell block the tests neither run nor parse in full says so, and why, right above its fence."""
    problems = []
    for block in all_blocks(*SHELL):
        if block.before.startswith(FIRST_HOUR) or block.not_run:
            continue
        if block.before.startswith("<!-- not-run"):
            problems.append(f"{block.where}: a not-run marker without a reason: {block.before}")
            continue
        for words in shell_commands(block.text):
            if not is_avb_zoo(words) or is_synopsis(words[1:]):
                problems.append(
                    f"{block.where}: {shlex.join(words)!r} is not an avb-zoo command the tests parse: "
                    "run the block in a test, or mark it with <!-- not-run: REASON --> right above the fence"
                )
    assert not problems, "\n".join(problems)


def test_every_documented_command_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths that must exist do not: only that is forgiven below
    checked = 0
    for block in all_blocks(*SHELL):
        for args in commands(block.text):
            if is_synopsis(args):
                continue  # only in a block marked not-run (the test above)
            try:
                parse(args)
            except click.BadParameter as err:
                assert "does not exist" in str(err), (block.where, args, err)
            except click.UsageError as err:
                raise AssertionError(f"{block.where}: avb-zoo {shlex.join(args)}: {err}") from err
            checked += 1
    assert checked >= 50, checked


def test_commands_that_are_not_run_name_what_exists():
    """In blocks marked not-run: a script exists and has every --option given to it; a test file exists; a
    module run with -m imports from here."""
    problems = []
    for block in all_blocks(*SHELL):
        for words in shell_commands(block.text):
            program, args = words[0], words[1:]
            if program not in ("python", "python3", "torchrun"):
                continue
            if "-m" in args:
                module = args[args.index("-m") + 1]
                if importlib.util.find_spec(module) is None:
                    problems.append(f"{block.where}: no module {module}")
                if module == "pytest":
                    problems += [
                        f"{block.where}: no {a}" for a in args if a.startswith("tests/") and not (ROOT / a).exists()
                    ]
                continue
            script = ROOT / args[0]
            if not script.is_file():
                problems.append(f"{block.where}: no script {args[0]}")
                continue
            source = script.read_text()
            for option in (a.split("=")[0] for a in args[1:] if a.startswith("--")):
                if f'"{option}"' not in source:
                    problems.append(f"{block.where}: {args[0]} has no option {option}")
    assert not problems, "\n".join(problems)


def python_blocks(marked: bool) -> list[Block]:
    return [b for b in all_blocks("python") if bool(b.not_run) == marked]


@pytest.mark.parametrize("block", python_blocks(marked=False), ids=lambda b: b.where)
def test_python_block_runs(block: Block, tmp_path):
    """Each unmarked Python block runs as written in a fresh interpreter and folder, offline (the shipped
    models are served from the package)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", block.text], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{block.where}:\n{done.stderr[-3000:]}"


def test_python_blocks_not_run_compile():
    for block in python_blocks(marked=True):
        compile(block.text, block.where, "exec")


def test_links_and_images_point_at_files():
    """Every relative link or image of the README and docs/ names a file that exists (for the README, the
    images in docs/ and the pages; mkdocs checks the pages' links to each other and their anchors too)."""
    missing = []
    for page in pages():
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path = target.split("#")[0]
            if not (page.parent / path).exists():
                missing.append(f"{page.relative_to(ROOT)}: {target}")
    assert not missing, missing


def api_paths() -> list[str]:
    return re.findall(r"^::: *(\S+)", API_PAGE.read_text(), re.M)


def test_the_api_page_lists_the_public_api():
    """docs/api.md holds every ``:::`` path of the site and names each public name where it is defined."""
    import avb_zoo

    paths = api_paths()
    wanted = [f"{module}.{name}" for name, module in avb_zoo._LAZY.items()]
    wanted += ["avb_zoo.runtime.Sampler", "avb_zoo.runtime.Encoder", "avb_zoo.errors"]
    missing = [w for w in wanted if w not in paths]
    assert not missing, f"docs/api.md lacks `::: {{path}}` lines for {missing}"
    elsewhere = [p.name for p in pages() if p != API_PAGE and re.search(r"^:::", p.read_text(), re.M)]
    assert not elsewhere, f"`:::` lines belong on docs/api.md alone: {elsewhere}"


def test_every_api_path_resolves():
    for path in api_paths():
        parts = path.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ModuleNotFoundError:
                continue
        else:
            raise AssertionError(f"docs/api.md: no module in {path}")
        for attr in parts[cut:]:
            assert hasattr(obj, attr), f"docs/api.md: {path} does not resolve ({attr})"
            obj = getattr(obj, attr)


def test_first_hour_block_is_marked():
    blocks = [b.text for b in code_blocks(README) if b.lang == "bash" and b.before.startswith(FIRST_HOUR)]
    assert len(blocks) == 1
    words = [args[:2] for args in commands(blocks[0])]
    for expected in (["data", "download"], ["data", "digits"], ["encode", "runs/mnist"], ["plot", "runs/mnist"]):
        assert expected in words


@pytest.mark.slow
def test_first_hour_runs_as_written(tmp_path, monkeypatch):
    (block,) = [b.text for b in code_blocks(README) if b.lang == "bash" and b.before.startswith(FIRST_HOUR)]
    subset_as_mnist(monkeypatch)
    monkeypatch.setenv("AVB_ZOO_DATA", str(tmp_path / "mnist"))  # where `data download` puts the files
    monkeypatch.chdir(tmp_path)
    with serve(SUBSET) as url:
        monkeypatch.setenv("AVB_ZOO_MNIST_MIRRORS", url)
        for args in commands(block):
            done = CliRunner().invoke(main, args)
            assert done.exit_code == 0, (args, done.output)
    for made in ("digits.npy", "z.npy", "recon.png", "samples.jpg", "runs/mnist/losses.png"):
        assert (tmp_path / made).is_file(), made


def _first_hour() -> str:
    (block,) = [b.text for b in code_blocks(README) if b.lang == "bash" and b.before.startswith(FIRST_HOUR)]
    return block


def test_first_hour_follows_the_quick_start_and_names_its_offline_data():
    """The block starts in the Quick start's environment, and its offline fallback is a folder the clone has."""
    lines = _first_hour().splitlines()
    assert lines[0].split("#")[0].split() == [".", ".venv/bin/activate"]
    fallback = re.search(r'\|\| export AVB_ZOO_DATA="\$PWD/(?P<dir>[^"]+)"', lines[1])
    assert fallback and (ROOT / fallback["dir"] / "MD5SUMS").is_file()


@pytest.mark.slow
def test_first_hour_runs_offline_in_bash_as_written(tmp_path):
    """The block itself, run by bash in a folder laid out like the clone after the Quick start, with no network:
    the download fails (naming every way to give MNIST), the block goes on with the committed subset."""
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    bindir = Path(sys.executable).parent
    (tmp_path / ".venv" / "bin" / "activate").write_text(f'export PATH="{bindir}:$PATH"\n')
    (tmp_path / "tests" / "data").mkdir(parents=True)
    (tmp_path / "tests" / "data" / "mnist-subset").symlink_to(SUBSET)
    env = {k: v for k, v in os.environ.items() if k not in ("AVB_ZOO_DATA", "AVB_ZOO_MNIST_MIRRORS")}
    env.update(
        AVB_ZOO_MNIST_MIRRORS="http://127.0.0.1:9/",  # nothing listens on port 9: the download fails at once
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        XDG_CACHE_HOME=str(tmp_path / "cache"),
        OMP_NUM_THREADS="1",
    )
    done = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", _first_hour()], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "AVB_ZOO_DATA=tests/data/mnist-subset" in done.stderr and "--mirror" in done.stderr
    for made in ("digits.npy", "z.npy", "recon.png", "samples.jpg", "runs/mnist/losses.png"):
        assert (tmp_path / made).is_file(), made
    assert not (tmp_path / "cache" / "avb-zoo" / "mnist").exists()  # the failed download left no empty folder


def test_the_models_table_is_generated_from_the_shipped_models():
    """README's table of shipped models is tools/models_table.py's output for the files under models/."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "models_table.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
