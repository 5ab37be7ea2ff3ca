"""The command's one face: ``--debug`` anywhere, ``--json`` errors as JSON, full summaries and an example per command.

Kept out of ``cli.py`` so that the commands stay thin and the group's behaviour is tested on its own:
- ``--debug`` may stand anywhere on the line (``avb-zoo pull X --debug`` as well as ``avb-zoo --debug pull X``);
- a command run with ``--json`` reports its errors as one JSON object on stdout (``{"error": {...}}``), so a
  script that parses the output gets JSON whatever happens, and the exit status stays 1 (2 for usage errors);
- ``--help`` lists each command's whole first sentence, and every command's help ends with an example, given
  beside the command by ``@example``.

It also holds what several command modules share: JSON output, one-line warnings and the torchrun options.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click

from avb_zoo.errors import AVBZooError, one_line

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


def example(text: str) -> Any:
    """``@example("avb-zoo ...")`` above ``@click.command``: the command's help ends with this example."""

    def apply(command: click.Command) -> click.Command:
        command.epilog = f"\b\nExample:\n  {text}"
        return command

    return apply


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


def one_line_warnings() -> None:
    """Warnings on stderr as ``warning: <message>``, one line, no source location (a command's user needs the
    message, not our line numbers)."""
    import warnings

    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


LAUNCH_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint", "rdzv_timeout", "max_restarts")


def threads_option(command: Any) -> Any:
    """``--threads N``: torch's (and onnxruntime's) intra-op threads; the default chooses them (see
    avb_zoo.compute.threads). Checked by the command itself, so a bad count is one line, not a usage screen."""
    return click.option(
        "--threads",
        type=int,
        default=None,
        help="Intra-op threads (1 to the CPUs this process may use). Default: $OMP_NUM_THREADS when set, else "
        "the physical cores other programs leave idle (one thread for tiny networks).",
    )(command)


def launch_options(command: Any) -> Any:
    """The options that run a command on several processes (and machines) under torchrun's elastic agent."""
    options = [
        click.option("--nproc", type=click.IntRange(min=1), default=None, help="Processes on this machine (torchrun)."),
        click.option("--nnodes", type=click.IntRange(min=1), default=1, show_default=True, help="Machines in the run."),
        click.option("--rdzv-endpoint", default=None, help="HOST:PORT where the machines meet (with --nnodes > 1)."),
        click.option(
            "--rdzv-timeout", type=click.IntRange(min=1), default=900, show_default=True, help="Seconds to wait."
        ),
        click.option(
            "--max-restarts",
            type=click.IntRange(min=0),
            default=0,
            show_default=True,
            help="Times torchrun restarts a failed group (it resumes from the last checkpoint).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def launch_settings(params: dict[str, Any]) -> Any:
    """LaunchSettings when the launch options ask for torchrun, else None (run in this process)."""
    from avb_zoo.training.launch import LaunchSettings

    wanted = params["nproc"] is not None or params["nnodes"] > 1 or params["rdzv_endpoint"] or params["max_restarts"]
    if not wanted:
        return None
    return LaunchSettings(
        nproc=params["nproc"] or 1,
        nnodes=params["nnodes"],
        rdzv_endpoint=params["rdzv_endpoint"],
        rdzv_timeout=params["rdzv_timeout"],
        max_restarts=params["max_restarts"],
    ).validate()


def worker_argv(ctx: click.Context) -> list[str]:
    """This command's own arguments, without the launch options: what each torchrun worker is given.

    Options left at their defaults are not passed, so the worker sees the same options as given as this process
    does (``eval`` records which options overrode its preset)."""
    argv: list[str] = []
    defaults = (click.core.ParameterSource.DEFAULT, click.core.ParameterSource.DEFAULT_MAP)
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if param.name in LAUNCH_OPTIONS or value is None:
            continue
        if isinstance(param, click.Option) and ctx.get_parameter_source(param.name or "") in defaults:
            continue
        if isinstance(param, click.Argument):
            argv.append(str(value))
        elif isinstance(param, click.Option) and param.is_flag:
            argv += [param.opts[0]] if value else []
        else:
            argv += [param.opts[0], str(value)]
    return argv
