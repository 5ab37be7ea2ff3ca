"""The ``avb-zoo`` command (click). Thin: parses arguments, calls the library, prints.

Exit codes: 0 success, 1 a problem with the input or the environment (the message names it), 2 a usage
error (click's own). A user's mistake never shows a traceback unless ``--debug`` is given. Heavy modules
(torch) are imported inside the commands that need them, so ``encode`` and ``sample`` stay torch-free.
"""

from __future__ import annotations

import importlib

import click

from avb_zoo.commands.support import OneFaceGroup, one_line_warnings

# command name -> (module in avb_zoo.commands, the command in it): each family of commands lives in its own
# module with its examples, imported only when one of its commands runs (or --help lists them all).
COMMANDS = {
    "train": ("train", "train"),
    "list": ("zoo", "list_models"),
    "info": ("zoo", "info"),
    "pull": ("zoo", "pull"),
    "push": ("zoo", "push"),
    "export": ("export", "export_graphs"),
    "verify": ("run", "verify"),
    "encode": ("run", "encode"),
    "sample": ("run", "sample"),
    "reconstruct": ("run", "reconstruct"),
    "export-web": ("export", "export_web"),
    "serve": ("export", "serve"),
    "web-runtime": ("export", "web_runtime"),
    "eval": ("evaluate", "eval_model"),
    "data": ("data", "data"),
    "plot": ("plot", "plot"),
}


class ZooGroup(OneFaceGroup):
    """Turns the project's own errors into one line on stderr (JSON on stdout with --json) and exit status 1;
    ``--debug`` anywhere on the line shows the traceback instead (avb_zoo.commands.support). Commands are
    loaded from COMMANDS when asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *super().list_commands(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            module, attr = COMMANDS[cmd_name]
            self.add_command(getattr(importlib.import_module(f"avb_zoo.commands.{module}"), attr), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors (anywhere on the line).")
@click.version_option(package_name="avb-zoo")
def main(debug: bool) -> None:
    """Adversarial Variational Bayes model zoo: train, evaluate, export, pull, encode and sample."""
    one_line_warnings()


if __name__ == "__main__":
    main()
