"""One face for the command: --debug anywhere, --json errors as JSON, full summaries and an example per command."""

from __future__ import annotations

import json

import pytest
from avb_zoo.cli import COMMANDS, main
from click.testing import CliRunner

from avb_zoo.errors import InvalidRepoId


def run(*args: str):
    return CliRunner().invoke(main, list(args))


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_anywhere_shows_the_traceback(where: str) -> None:
    args = ["pull", "hf-hub:a/..b"]
    result = run(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert isinstance(result.exception, InvalidRepoId)
    plain = run(*args)
    assert plain.exit_code == 1 and plain.output.startswith("error: repo id 'a/..b'") and plain.exception.code == 1


def test_json_commands_report_errors_as_json() -> None:
    result = run("pull", "hf-hub:a/..b", "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "InvalidRepoId" and "a/..b" in error["message"] and error["exit_code"] == 1
    usage = run("info", "--json", "--no-such-flag")
    assert usage.exit_code == 2 and json.loads(usage.stdout)["error"]["exit_code"] == 2


def test_help_shows_whole_summaries_and_every_command_has_an_example() -> None:
    text = run("--help").output
    assert "..." not in text.split("Commands:")[1]
    assert "and print where they are and where they came from" in " ".join(text.split())
    for name in COMMANDS:  # every command, whether or not --help has loaded it
        help_text = run(name, "--help").output
        assert "Example:" in help_text and "avb-zoo " + name in help_text, name
