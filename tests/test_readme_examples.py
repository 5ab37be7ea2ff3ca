"""The README's commands against the current CLI: every ``avb-zoo`` line parses (fast), and the first-hour
block runs as written, top to bottom, in a fresh folder (slow; MNIST from a local mirror of the committed
subset, whose md5 sums stand in for the published ones)."""

from __future__ import annotations

import re
import shlex
import warnings
from pathlib import Path

import click
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from mnist_mirror import SUBSET, serve, subset_as_mnist

README = Path(__file__).resolve().parents[1] / "README.md"
FIRST_HOUR = "<!-- readme-test: first-hour"


def bash_blocks(text: str) -> list[tuple[str, str]]:
    """(the line before the fence, the block's text) for every ```bash block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"([^\n]*)\n```bash\n(.*?)\n```", text, re.S)]


def commands(block: str) -> list[list[str]]:
    """The ``avb-zoo`` commands of a block as argument lists: continuations joined, ``&&`` chains split,
    comments and leading VAR=value assignments dropped."""
    out = []
    for line in block.replace("\\\n", " ").splitlines():
        for part in line.split("&&"):
            words = shlex.split(part, comments=True)
            while words and re.match(r"^[A-Z_]+=", words[0]):
                words = words[1:]
            if words and (words[0] == "avb-zoo" or words[0].endswith("/avb-zoo")):
                out.append(words[1:])
    return out


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


def test_every_readme_command_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths that must exist do not: only that is forgiven below
    checked = 0
    for _, block in bash_blocks(README.read_text()):
        for args in commands(block):
            if any("[" in a or "..." in a or "|" in a for a in args):
                continue  # a synopsis ([--option] or a|b), not a command to run
            try:
                parse(args)
            except click.BadParameter as err:
                assert "does not exist" in str(err), (args, err)
            checked += 1
    assert checked >= 30


def test_first_hour_block_is_marked():
    blocks = [b for before, b in bash_blocks(README.read_text()) if before.startswith(FIRST_HOUR)]
    assert len(blocks) == 1
    words = [args[:2] for args in commands(blocks[0])]
    for expected in (["data", "download"], ["data", "digits"], ["encode", "runs/mnist"], ["plot", "runs/mnist"]):
        assert expected in words


@pytest.mark.slow
def test_first_hour_runs_as_written(tmp_path, monkeypatch):
    (block,) = [b for before, b in bash_blocks(README.read_text()) if before.startswith(FIRST_HOUR)]
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


def test_the_models_table_is_generated_from_the_shipped_models():
    """README's table of shipped models is tools/models_table.py's output for the files under models/."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, str(README.parent / "tools" / "models_table.py"), "--check"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
