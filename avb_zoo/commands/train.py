"""``avb-zoo train``: a catalogue recipe into a run folder, in this process, under torchrun, or stacked seeds."""

from __future__ import annotations

import sys
from typing import Any

import click

from avb_zoo.commands.support import (
    example,
    launch_options,
    launch_settings,
    print_json,
    threads_option,
    worker_argv,
)


@example("avb-zoo train toy-avb --out runs/toy-avb")
@click.command()
@click.argument("model_id")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/ID).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--max-steps", type=int, default=None, help="Stop after this many steps in all (at least 1).")
@click.option(
    "--max-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Stop (with a checkpoint) at the first step that ends past this much training wall time, "
    "counted over every sitting of the run.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw of the run.")
@click.option(
    "--seeds",
    default=None,
    help="Several seeds (0-7 or 0,3,5), trained together in this process into OUT/seed-<s>, each as its solo run.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--data-dir", type=click.Path(), default=None, help="MNIST folder (default: $AVB_ZOO_DATA).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Override the recipe's (global) batch.")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=None, help="Steps between checkpoints.")
@click.option("--dtype", type=click.Choice(["float32", "float64"]), default="float32", show_default=True)
@click.option(
    "--precision",
    default=None,
    help="Matrix products of the forward passes: float32, or bf16 on a CPU or GPU with native bf16 (losses, "
    "log-densities, Adam and the master weights stay float32). Default: a resumed run's, else the recipe's "
    "(float32 where the recipe's bf16 cannot run).",
)
@threads_option
@click.option(
    "--engine",
    type=click.Choice(["eager", "compiled", "graphs"]),
    default="eager",
    show_default=True,
    help="How a step runs: eager (reference), compiled (torch.compile), graphs (compiled + CUDA graph replay).",
)
@click.option(
    "--noise",
    type=click.Choice(["host", "device"]),
    default=None,
    help="The run's noise stream: host (keyed CPU generators) or device (keyed Philox, needed by graphs). "
    "Default: the resumed run's, else device for graphs and host otherwise.",
)
@launch_options
@click.option(
    "--log-every",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Steps between reports: a line on stderr when it is not a terminal, and a row of history.jsonl.",
)
@click.option("--quiet", is_flag=True, help="No progress bar or lines.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def train(
    ctx: click.Context,
    model_id: str,
    out: str | None,
    device: str,
    max_steps: int | None,
    max_minutes: float | None,
    seed: int,
    seeds: str | None,
    resume: bool,
    data_dir: str | None,
    batch_size: int | None,
    checkpoint_every: int | None,
    dtype: str,
    precision: str | None,
    threads: int | None,
    engine: str,
    noise: str | None,
    log_every: int,
    quiet: bool,
    as_json: bool,
    **launch: Any,
) -> None:
    """Train the catalogue recipe MODEL_ID (e.g. toy-avb) into a run folder.

    With --nproc N the run is data-parallel on N processes (DDP, started by torchrun's elastic agent); the
    batch stays the global batch and the result does not depend on N beyond rounding. With --seeds the
    models of several seeds are trained as one stacked model in this process, one run folder per seed.
    """
    from pathlib import Path

    from avb_zoo.catalogue.recipes import find_recipe
    from avb_zoo.compute.device import resolve_device
    from avb_zoo.compute.precision import check_precision
    from avb_zoo.compute.threads import check_threads
    from avb_zoo.training.options import check_max_steps, check_train_options
    from avb_zoo.training.trainer import check_resume
    from avb_zoo.training.trainer import train as run_training

    recipe = find_recipe(model_id)
    check_max_steps(max_steps)
    check_threads(threads)
    if precision is not None:
        check_precision(precision, resolve_device(device), dtype)
    out = out or f"runs/{recipe.id}"
    settings = launch_settings(launch)
    check_train_options(
        seeds=seeds is not None,
        launched=settings is not None,
        max_minutes=max_minutes,
        engine=engine,
        noise=noise,
        seed_given=ctx.get_parameter_source("seed") is click.core.ParameterSource.COMMANDLINE,
    )
    if seeds is not None:
        options = (max_steps, resume, data_dir, batch_size, checkpoint_every, dtype, precision, threads)
        _train_seeds(ctx, recipe, out, seeds, device, *options)
        return
    if settings is not None:
        from avb_zoo.compute.distributed import World
        from avb_zoo.training.launch import launch as start

        resolve_device(device)
        global_batch = batch_size or recipe.train.batch_size
        World(size=settings.world_size).check_divides(global_batch)
        check_resume(Path(out), resume, recipe, seed, global_batch, dtype, precision=precision)
        start("avb_zoo.training", worker_argv(ctx), settings, "training")
        return
    from avb_zoo.compute.distributed import leave_world
    from avb_zoo.errors import TrainingInterrupted

    try:
        result = run_training(
            recipe,
            out,
            device=resolve_device(device),
            max_steps=max_steps,
            seed=seed,
            resume=resume,
            data_dir=data_dir,
            batch_size=batch_size,
            checkpoint_every=checkpoint_every,
            dtype=dtype,
            progress=False if quiet else ("bar" if sys.stderr.isatty() else "lines"),
            engine=engine,
            noise=noise,
            report_every=log_every,
            max_seconds=None if max_minutes is None else 60.0 * max_minutes,
            precision=precision,
            threads=threads,
        )
    except TrainingInterrupted as err:
        click.echo(f"interrupted: {err}", err=True)
        again = resume_command(ctx, out, resume=err.checkpoint_step >= 0)
        click.echo(f"{'resume' if err.checkpoint_step >= 0 else 'start again'} with: {again}", err=True)
        ctx.exit(130)
    finally:
        leave_world()  # the group torchrun's workers joined (nothing outside torchrun)
    if not result.world.is_main:
        return
    from avb_zoo.compute.distributed import restart_count
    from avb_zoo.modelfile.provenance import write_training_record

    write_training_record(
        result.out,
        worker_argv(ctx),
        str(device),
        result.training_seconds,
        result.step,
        engine=result.engine,
        seconds_this_sitting=round(result.seconds, 1),
        precision=result.precision,
        **result.threads,
    )

    summary = {
        "id": recipe.id,
        "out": str(result.out),
        "step": result.step,
        "processes": result.world.size,
        "restarts": restart_count(),
        "steps_run": result.steps_run,
        "seconds": round(result.seconds, 3),
        "examples_per_second": round(result.examples_per_second, 1),
        "engine": result.engine,
        "noise": result.noise,
        "engine_notes": result.engine_notes,
        "precision": result.precision,
        **result.threads,
    }
    if result.last is not None:
        elbo_key = "elbo" if recipe.model["method"] == "vae" else "elbo_estimate"  # AVB: the adversary's estimate
        summary.update(primal_loss=result.last.primal, adversary_loss=result.last.adversary)
        summary[elbo_key] = result.last.elbo
    if as_json:
        print_json(summary)
    else:
        click.echo(f"trained {recipe.id} to step {result.step}; model in {result.out}")


def resume_command(ctx: click.Context, out: str, resume: bool = True) -> str:
    """The command that continues this run: the options given on the command line, --out, and --resume."""
    import shlex

    words = ["avb-zoo", "train"]
    for param in ctx.command.params:
        name = param.name or ""
        value = ctx.params.get(name)
        given = ctx.get_parameter_source(name) in (
            click.core.ParameterSource.COMMANDLINE,
            click.core.ParameterSource.ENVIRONMENT,
        )
        if isinstance(param, click.Argument):
            words.append(str(value))
        elif name == "out":
            words += ["--out", out]
        elif given and name != "resume" and isinstance(param, click.Option):
            words += [param.opts[0]] if param.is_flag else [param.opts[0], str(value)]
    if resume:
        words.append("--resume")
    return shlex.join(words)


def _train_seeds(ctx: click.Context, recipe: Any, out: str, seeds: str, device: str, *args: Any) -> None:
    """``train --seeds``: every seed's model stacked in this process; exit 1 when a model stopped."""
    from avb_zoo.compute.device import resolve_device
    from avb_zoo.training.seeds import parse_seeds, train_seeds

    max_steps, resume, data_dir, batch_size, checkpoint_every, dtype, precision, threads = args
    quiet, as_json = ctx.params["quiet"], ctx.params["as_json"]
    result = train_seeds(
        recipe,
        out,
        parse_seeds(seeds),
        device=resolve_device(device),
        max_steps=max_steps,
        resume=resume,
        data_dir=data_dir,
        batch_size=batch_size,
        checkpoint_every=checkpoint_every,
        dtype=dtype,
        progress=not quiet and sys.stderr.isatty(),
        precision=precision,
        threads=threads,
    )
    summary = {
        "id": recipe.id,
        "seeds": {str(s): {"out": str(r.out), "step": r.step} for s, r in result.runs.items()},
        "diverged": {str(s): why for s, why in result.diverged.items()},
        "steps_run": result.steps_run,
        "seconds": round(result.seconds, 3),
        "examples_per_second": round(result.examples_per_second, 1),
    }
    if as_json:
        print_json(summary)
    else:
        for s, r in result.runs.items():
            click.echo(f"trained {recipe.id} seed {s} to step {r.step}; model in {r.out}")
    for why in result.diverged.values():
        click.echo(f"error: {why}", err=True)
    if result.diverged:
        ctx.exit(1)
