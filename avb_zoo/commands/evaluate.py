"""``avb-zoo eval``: AIS log-likelihood, ELBO and reconstruction error of a model, by a named protocol."""

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


def _preset_settings(ctx: click.Context, model: Any, name: str) -> tuple[Any, int | None, str]:
    """(AIS settings, n_test, protocol label) of ``eval``: the preset's values under the options given."""
    from avb_zoo.evaluation.evaluate import resolve_model_folder
    from avb_zoo.evaluation.presets import find_preset, preset_ais, preset_label
    from avb_zoo.modelling.weights import read_config

    preset = find_preset(name)
    p = ctx.params
    given = ["ais_steps", "ais_chains", "ais_leapfrog", "n_test", "ais_schedule", "ais_pilot_chains", "ais_pilot_steps"]
    given = [k for k in given if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE]
    data = str((read_config(resolve_model_folder(model)[0]).get("data") or {}).get("name", ""))
    ais = preset_ais(
        preset,
        data,
        steps=p["ais_steps"],
        chains=p["ais_chains"],
        leapfrog_steps=p["ais_leapfrog"],
        schedule=p["ais_schedule"],
        pilot_chains=p["ais_pilot_chains"],
        pilot_steps=p["ais_pilot_steps"],
    )
    n_test = p["n_test"] if p["n_test"] is not None else preset.n_test_for(data)
    return ais, n_test, preset_label(preset, ["--" + k.replace("_", "-") for k in given])


@example("avb-zoo eval runs/toy-avb --ais-steps 100 --ais-chains 2")
@click.command("eval")
@click.argument("id_or_dir")
@click.option(
    "--preset",
    default="paper",
    show_default=True,
    help="Named protocol: paper (AIS 1000 x 5 chains, 2048 MNIST images) or quick (100 x 2, 256 images).",
)
@click.option("--estimate-only", is_flag=True, help="Print the estimated run time (from the timed pilot) and stop.")
@click.option(
    "--ais-steps", type=click.IntRange(min=1), default=None, help="AIS distributions [default: the preset's]."
)
@click.option("--ais-chains", type=click.IntRange(min=1), default=None, help="AIS chains per example [preset's].")
@click.option("--ais-leapfrog", type=click.IntRange(min=1), default=None, help="Leapfrog steps [preset's].")
@click.option("--ais-schedule", type=click.Choice(["linear", "sigmoid"]), default="linear", show_default=True)
@click.option(
    "--ais-pilot-chains", type=int, default=1, show_default=True, help="Chains per example of the step-size pilot."
)
@click.option(
    "--ais-pilot-steps", type=int, default=None, help="Distributions of the step-size pilot [default: --ais-steps]."
)
@click.option(
    "--n-test", type=click.IntRange(min=1), default=None, help="Test examples (default: the preset's; toy 4)."
)
@click.option("--batch-size", type=click.IntRange(min=1), default=128, show_default=True, help="Examples per batch.")
@click.option("--iw-samples", type=click.IntRange(min=1), default=1000, show_default=True, help="VAE IW bound samples.")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@threads_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random draw (keyed per example).")
@click.option("--data-dir", type=click.Path(), default=None, help="MNIST folder (default: $AVB_ZOO_DATA).")
@click.option("--no-write", is_flag=True, help="Do not write metrics.json beside the weights.")
@click.option(
    "--bdmc",
    type=int,
    default=None,
    help="Also bracket AIS by BDMC on this many (x, z) pairs simulated from the model (forward and reverse AIS).",
)
@click.option(
    "--resume-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep every finished batch here and read back those already here: a stopped evaluation resumes "
    "where it stopped, with the same result (the folder must belong to the same model and settings).",
)
@launch_options
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics and protocol as one JSON object.")
@click.pass_context
def eval_model(
    ctx: click.Context,
    id_or_dir: str,
    preset: str,
    estimate_only: bool,
    ais_steps: int | None,
    ais_chains: int | None,
    ais_leapfrog: int | None,
    ais_schedule: str,
    ais_pilot_chains: int,
    ais_pilot_steps: int | None,
    n_test: int | None,
    batch_size: int,
    iw_samples: int,
    device: str,
    threads: int | None,
    seed: int,
    data_dir: str | None,
    no_write: bool,
    bdmc: int | None,
    resume_dir: str | None,
    quiet: bool,
    as_json: bool,
    **launch: Any,
) -> None:
    """Evaluate a model folder or zoo id: AIS log-likelihood, ELBO, reconstruction error (-> metrics.json).

    --preset paper is the AVB paper's protocol, --preset quick a check at about 1/400 of its AIS work; options
    given override the preset's values. Before AIS starts, a short timed pilot prints the estimated run time.

    With --nproc N the test batches are shared out between N processes (started by torchrun's elastic
    agent); the metrics equal those of one process, only the timings and protocol.processes differ.

    --threads fixes torch's threads (in each process under --nproc); without it they are chosen from the cores
    other programs leave idle, and protocol.threads records the count used.
    """
    from avb_zoo.compute.distributed import join_world, leave_world
    from avb_zoo.evaluation.evaluate import (
        EvalSettings,
        check_evaluation,
        estimate_folder,
        evaluate_folder,
        format_table,
    )
    from avb_zoo.evaluation.presets import find_preset
    from avb_zoo.hub.resolve import resolve
    from avb_zoo.util.threads import check_threads

    check_threads(threads)
    find_preset(preset)  # a misspelt preset is named before the model is looked up
    model = resolve(id_or_dir)  # the name is resolved once; every step below takes the folder it names
    ais, n_test, label = _preset_settings(ctx, model, preset)
    settings = EvalSettings(
        ais=ais,
        n_test=n_test,
        batch_size=batch_size,
        seed=seed,
        iw_samples=iw_samples,
        device=device,
        data_dir=data_dir,
        preset=label,
        bdmc=bdmc,
        threads=threads,
    )
    if estimate_only:
        click.echo(f"preset {label}: " + estimate_folder(model, settings).describe())
        return
    launch_with = launch_settings(launch)
    if launch_with is not None:
        from avb_zoo.training.launch import launch as start

        check_evaluation(model, settings)
        start("avb_zoo.evaluation", worker_argv(ctx), launch_with, "evaluation")
        return
    try:
        result, path = evaluate_folder(
            model,
            settings,
            write=not no_write,
            progress=not quiet and sys.stderr.isatty(),
            on_estimate=None
            if quiet or as_json
            else lambda est: click.echo(f"preset {label}: {est.describe()}", err=True),
            resume_dir=resume_dir,
        )
        if not join_world(device).is_main:  # the group joined by evaluate_folder: rank 0 alone prints
            return
    finally:
        leave_world()
    if as_json:
        print_json(result)
        return
    click.echo(format_table(result))
    for warning in result["reliability"]["warnings"]:
        click.echo(f"warning: {warning}", err=True)
    if path is not None:
        click.echo(f"metrics written to {path}")
    elif not no_write:
        click.echo("metrics.json not written: the model is not a folder of yours (copy it to keep its metrics)")
