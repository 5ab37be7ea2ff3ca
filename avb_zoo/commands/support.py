"""The command's one face: ``--debug`` anywhere, ``--json`` errors as JSON, full summaries and an example per command.

Kept out of ``cli.py`` so that the commands stay thin and the group's behaviour is tested on its own:
- ``--debug`` may stand anywhere on the line (``avb-zoo pull X --debug`` as well as ``avb-zoo --debug pull X``);
- a command run with ``--json`` reports its errors as one JSON object on stdout (``{"error": {...}}``), so a
  script that parses the output gets JSON whatever happens, and the exit status stays 1 (2 for usage errors);
- ``--help`` lists each command's whole first sentence, and every command's help ends with an example.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from avb_zoo.errors import AVBZooError, one_line

EXAMPLES = {
    "train": "avb-zoo train toy-avb --out runs/toy-avb",
    "list": "avb-zoo list",
    "info": "avb-zoo info hf-hub:ORG/NAME",
    "pull": "avb-zoo pull hf-hub:ORG/NAME@v1.0",
    "push": "avb-zoo push runs/toy-avb --repo-id ORG/NAME",
    "export": "avb-zoo export runs/toy-avb",
    "verify": "avb-zoo verify toy-avb",
    "encode": "avb-zoo encode toy-avb digits.npy --out z.npy",
    "sample": "avb-zoo sample toy-avb -n 16 --out samples.png",
    "reconstruct": "avb-zoo reconstruct mnist-avb-ac digits.npy --out recon.png",
    "eval": "avb-zoo eval runs/toy-avb --ais-steps 100 --ais-chains 2",
    "export-web": "avb-zoo export-web toy-avb --out toy-page",
    "serve": "avb-zoo serve toy-page",
    "web-runtime": "avb-zoo web-runtime",
    "plot": "avb-zoo plot runs/toy-avb --out losses.png",
    "data": "avb-zoo data digits --split test -n 16 --out digits.npy",
}
JSON_KEY = "avb_zoo.json_errors"
DEBUG_KEY = "avb_zoo.debug"


def split_flags(args: list[str]) -> tuple[list[str], bool, bool]:
    """(args without ``--debug``, whether --debug was given, whether --json was) (options only, before ``--``)."""
    end = args.index("--") if "--" in args else len(args)
    head, tail = args[:end], args[end:]
    debug = "--debug" in head
    return [a for a in head if a != "--debug"] + tail, debug, "--json" in head


def _json_error(err: Exception, exit_code: int) -> str:
    return json.dumps({"error": {"type": type(err).__name__, "message": one_line(str(err)), "exit_code": exit_code}})


class _NoteHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The library's notes (how a name was read, e.g. a bare ORG/NAME taken as a Hub repo), as ``note:`` lines.

    Writes to ``sys.stderr`` as it is at each record, not as it was when the handler was made.
    """

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def show_notes() -> None:
    """Print the library's warnings-level notes on stderr as ``note: ...`` (once per process)."""
    logger = logging.getLogger("avb_zoo")
    if not any(isinstance(h, _NoteHandler) for h in logger.handlers):
        handler = _NoteHandler()
        handler.setLevel(logging.WARNING)
        handler.setFormatter(logging.Formatter("note: %(message)s"))
        logger.addHandler(handler)


class OneFaceGroup(click.Group):
    """A click group whose flags and errors behave the same wherever they are given."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> click.Context:
        args, debug, as_json = split_flags(list(args))
        ctx = super().make_context(info_name, (["--debug"] if debug else []) + args, parent=parent, **extra)
        ctx.meta[JSON_KEY], ctx.meta[DEBUG_KEY] = as_json, debug
        return ctx

    def invoke(self, ctx: click.Context) -> Any:
        show_notes()
        try:
            return super().invoke(ctx)
        except AVBZooError as err:
            if ctx.meta.get(DEBUG_KEY) or ctx.params.get("debug"):
                raise
            if ctx.meta.get(JSON_KEY):
                click.echo(_json_error(err, 1))
            else:
                click.echo(f"error: {one_line(str(err))}", err=True)
            ctx.exit(1)
        except click.UsageError as err:
            if not ctx.meta.get(JSON_KEY):
                raise
            click.echo(_json_error(err, 2))
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)

    def add_command(self, cmd: click.Command, name: str | None = None) -> None:
        """Every command's help ends with its example."""
        example = EXAMPLES.get(name or cmd.name or "")
        if example and not cmd.epilog:
            cmd.epilog = f"\b\nExample:\n  {example}"
        super().add_command(cmd, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list with each command's whole first sentence (click cuts it to fit one line)."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(limit=400)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
