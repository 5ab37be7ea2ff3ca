"""The ``avb-zoo`` command (click). Thin: parses arguments, calls the library, prints.

Exit codes: 0 success, 1 a problem with the input or the environment (the message names it), 2 a usage
error (click's own). A user's mistake never shows a traceback unless ``--debug`` is given. Heavy modules
(torch) are imported inside the commands that need them, so ``encode`` and ``sample`` stay torch-free.
"""

from __future__ import annotations

import click

from avb_zoo.commands.support import OneFaceGroup, one_line_warnings


class ZooGroup(OneFaceGroup):
    """Turns the project's own errors into one line on stderr (JSON on stdout with --json) and exit status 1;
    ``--debug`` anywhere on the line shows the traceback instead (avb_zoo.commands.support)."""


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors (anywhere on the line).")
@click.version_option(package_name="avb-zoo")
def main(debug: bool) -> None:
    """Adversarial Variational Bayes model zoo: train, evaluate, export, pull, encode and sample."""
    one_line_warnings()


def add_commands() -> None:
    """The commands, by family (avb_zoo/commands): each module holds its commands with their examples."""
    from avb_zoo.commands import data, evaluate, export, plot, run, train, zoo

    for command in (
        train.train,
        zoo.list_models,
        zoo.info,
        zoo.pull,
        zoo.push,
        export.export_graphs,
        run.verify,
        run.encode,
        run.sample,
        run.reconstruct,
        export.export_web,
        export.serve,
        export.web_runtime,
        evaluate.eval_model,
        data.data,
        plot.plot,
    ):
        main.add_command(command)


add_commands()

if __name__ == "__main__":
    main()
