"""The ``avb-zoo`` command (click). Thin: parses arguments, calls the library, prints.

Exit codes: 0 success, 1 a problem with the input or the environment (the message names it), 2 a usage
error (click's own). A user's mistake never shows a traceback unless ``--debug`` is given. Heavy modules
(torch) are imported inside the commands that need them, so ``encode`` and ``sample`` stay torch-free.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from avb_zoo.errors import AVBZooError


class ZooGroup(click.Group):
    """Turns the project's own errors into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AVBZooError as err:
            if ctx.params.get("debug"):
                raise
            click.echo(f"error: {err}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors.")
@click.version_option(package_name="avb-zoo")
def main(debug: bool) -> None:
    """Adversarial Variational Bayes model zoo: train, evaluate, export, pull, encode and sample."""


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


@main.command()
@click.argument("model_id")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/ID).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--max-steps", type=click.IntRange(min=0), default=None, help="Stop after this many steps in all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw of the run.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--data-dir", type=click.Path(), default=None, help="MNIST folder (default: $AVB_ZOO_DATA).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the recipe's batch size.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, help="Steps between checkpoints.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(
    model_id: str,
    out: str | None,
    device: str,
    max_steps: int | None,
    seed: int,
    resume: bool,
    data_dir: str | None,
    batch_size: int | None,
    checkpoint_every: int | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Train the catalogue recipe MODEL_ID (e.g. toy-avb) into a run folder."""
    from avb_zoo.recipes import find_recipe
    from avb_zoo.training.device import resolve_device
    from avb_zoo.training.trainer import train as run_training

    recipe = find_recipe(model_id)
    result = run_training(
        recipe,
        out or f"runs/{recipe.id}",
        device=resolve_device(device),
        max_steps=max_steps,
        seed=seed,
        resume=resume,
        data_dir=data_dir,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        progress=not quiet and sys.stderr.isatty(),
    )
    summary = {"id": recipe.id, "out": str(result.out), "step": result.step}
    if result.last is not None:
        summary.update(primal_loss=result.last.primal, adversary_loss=result.last.adversary, elbo=result.last.elbo)
    if as_json:
        print_json(summary)
    else:
        click.echo(f"trained {recipe.id} to step {result.step}; model in {result.out}")


if __name__ == "__main__":
    main()
