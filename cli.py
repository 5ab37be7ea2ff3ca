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

from avb_zoo.cli_support import OneFaceGroup


class ZooGroup(OneFaceGroup):
    """Turns the project's own errors into one line on stderr (JSON on stdout with --json) and exit status 1;
    ``--debug`` anywhere on the line shows the traceback instead (avb_zoo.cli_support)."""


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks for errors (anywhere on the line).")
@click.version_option(package_name="avb-zoo")
def main(debug: bool) -> None:
    """Adversarial Variational Bayes model zoo: train, evaluate, export, pull, encode and sample."""
    one_line_warnings()


def one_line_warnings() -> None:
    """Warnings on stderr as ``warning: <message>``, one line, no source location (a command's user needs the
    message, not our line numbers)."""
    import warnings

    warnings.formatwarning = lambda message, *_args, **_kwargs: f"warning: {message}\n"


def print_json(obj: Any) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=True))


LAUNCH_OPTIONS = ("nproc", "nnodes", "rdzv_endpoint", "rdzv_timeout", "max_restarts")


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
    from avb_zoo.launch import LaunchSettings

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


@main.command()
@click.argument("model_id")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/ID).")
@click.option("--device", default="cpu", show_default=True, help="torch device, e.g. cpu or cuda.")
@click.option("--max-steps", type=click.IntRange(min=0), default=None, help="Stop after this many steps in all.")
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

    from avb_zoo.recipes import find_recipe
    from avb_zoo.training.device import resolve_device
    from avb_zoo.training.trainer import check_resume
    from avb_zoo.training.trainer import train as run_training

    recipe = find_recipe(model_id)
    out = out or f"runs/{recipe.id}"
    if seeds is not None:
        if max_minutes is not None:
            from avb_zoo.errors import ConfigError

            raise ConfigError("--max-minutes trains one seed; with --seeds use --max-steps")
        _train_seeds(ctx, recipe, out, seeds, device, max_steps, resume, data_dir, batch_size, checkpoint_every, dtype)
        return
    settings = launch_settings(launch)
    if settings is not None:
        from avb_zoo.distributed import World
        from avb_zoo.launch import launch as start

        resolve_device(device)
        if max_minutes is not None:
            from avb_zoo.errors import ConfigError

            raise ConfigError(
                "--max-minutes runs in one process (each rank keeps its own clock); with --nproc use --max-steps"
            )
        if engine != "eager" or noise == "device":
            from avb_zoo.errors import ConfigError

            raise ConfigError(
                f"--engine {engine} with --noise {noise} runs in one process; with --nproc use --engine eager"
            )
        global_batch = batch_size or recipe.train.batch_size
        World(size=settings.world_size).check_divides(global_batch)
        check_resume(Path(out), resume, recipe, seed, global_batch, dtype)
        start("avb_zoo.training", worker_argv(ctx), settings, "training")
        return
    from avb_zoo.distributed import leave_world
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
    from avb_zoo.distributed import restart_count
    from avb_zoo.provenance import write_training_record

    write_training_record(
        result.out,
        worker_argv(ctx),
        str(device),
        result.training_seconds,
        result.step,
        engine=result.engine,
        seconds_this_sitting=round(result.seconds, 1),
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
    from avb_zoo.errors import ConfigError
    from avb_zoo.training.device import resolve_device
    from avb_zoo.training.seeds import parse_seeds, train_seeds

    max_steps, resume, data_dir, batch_size, checkpoint_every, dtype = args
    if ctx.params["engine"] != "eager" or ctx.params["noise"] == "device":
        raise ConfigError("--seeds trains the stacked step on the host noise stream; drop --engine and --noise")
    if launch_settings({k: ctx.params[k] for k in LAUNCH_OPTIONS}) is not None:
        raise ConfigError("--seeds trains its models in one process; it cannot be combined with --nproc or --nnodes")
    if ctx.get_parameter_source("seed") is click.core.ParameterSource.COMMANDLINE:
        raise ConfigError("give either --seed or --seeds, not both")
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


def _preset_settings(ctx: click.Context, id_or_dir: str, name: str) -> tuple[Any, int | None, str]:
    """(AIS settings, n_test, protocol label) of ``eval``: the preset's values under the options given."""
    from avb_zoo.evaluation.evaluate import resolve_model_folder
    from avb_zoo.evaluation.presets import find_preset, preset_ais, preset_label
    from avb_zoo.model_io import read_config

    preset = find_preset(name)
    p = ctx.params
    given = ["ais_steps", "ais_chains", "ais_leapfrog", "n_test", "ais_schedule", "ais_pilot_chains", "ais_pilot_steps"]
    given = [k for k in given if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE]
    data = str((read_config(resolve_model_folder(id_or_dir)[0]).get("data") or {}).get("name", ""))
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


ERROR_SUFFIXES = {"_mc_se": "MC s.e.", "_spread_se": "spread s.e."}


def _metrics_text(metrics: dict[str, Any]) -> str:
    """``name=value (MC s.e. a, spread s.e. b)`` for each metric; ``<name>_mc_se`` is the AIS Monte Carlo error,
    ``<name>_spread_se`` the spread over examples (std / sqrt(n)); an ``*_estimate`` is not a bound."""
    parts = []
    for name, value in metrics.items():
        if any(name.endswith(suffix) and name[: -len(suffix)] in metrics for suffix in ERROR_SUFFIXES):
            continue
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        errors = [
            f"{label} {metrics[name + suffix]:.2g}"
            for suffix, label in ERROR_SUFFIXES.items()
            if isinstance(metrics.get(name + suffix), float)
        ]
        if name.endswith("_estimate"):
            errors.append("an estimate, not a bound")
        parts.append(f"{name}={text}" + (f" ({', '.join(errors)})" if errors else ""))
    return ", ".join(parts) or "-"


@main.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def list_models(as_json: bool) -> None:
    """List the registered models (catalogue and plugins) with versions, weights and metrics."""
    from avb_zoo.registry import all_specs

    specs = all_specs()
    if as_json:
        print_json([s.to_dict() for s in specs])
        return
    latest: dict[tuple[str | None, str], int] = {}
    for s in specs:
        latest[(s.namespace, s.name)] = max(s.version, latest.get((s.namespace, s.name), 0))
    rows = [("ID", "LATEST", "METHOD", "DATA", "WEIGHTS", "METRICS")]
    for s in specs:
        weights = f"{s.hub_repo_id}@{s.hub_revision or 'main'}" if s.hub_repo_id else "-"
        if s.local_dir is not None:
            weights += " (shipped)"
        rows.append(
            (
                s.id,
                "yes" if latest[(s.namespace, s.name)] == s.version else "no",
                str(s.kwargs.get("method", "-")),
                str((s.kwargs.get("data") or {}).get("name", "-")),
                weights,
                _metrics_text(s.metrics),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])


@main.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON.")
def info(model_id: str, as_json: bool) -> None:
    """Show everything registered for MODEL_ID: architecture, Hub repo and revision, file hashes, metrics."""
    from avb_zoo.model_ref import is_hub_name
    from avb_zoo.registry import resolution_note, spec

    if is_hub_name(model_id):
        _info_hub(model_id, as_json)
        return
    found = spec(model_id)
    if as_json:
        print_json(found.to_dict())
        return
    note = resolution_note(model_id)
    if note:
        click.echo(f"note: {note}", err=True)
    data = found.to_dict()
    click.echo(f"id:          {data['id']}")
    click.echo(f"description: {data['description'] or '-'}")
    click.echo(f"entry point: {data['entry_point']}")
    hub = data["hub"]
    click.echo(f"hub:         {hub['repo_id'] + '@' + (hub['revision'] or 'main') if hub['repo_id'] else '-'}")
    click.echo(f"shipped:     {data['shipped'] or '-'}")
    click.echo(f"catalogue:   {data['recipe'] or '-'}")
    click.echo(f"metrics:     {_metrics_text(data['metrics'])}")
    for path, digest in sorted(hub["files"].items()):
        click.echo(f"file:        {path}  sha256 {digest}")
    click.echo("model:       " + json.dumps(data["kwargs"], sort_keys=True))


def _info_hub(model_id: str, as_json: bool) -> None:
    """``info`` for a Hub repo outside the catalogue: pulled (verified), then its commit, files and config."""
    from avb_zoo.config_file import read_config_json
    from avb_zoo.hub import fetch

    pulled = fetch(model_id, progress=False)
    config = read_config_json(pulled.folder)
    if as_json:
        print_json({**pulled.to_dict(), "config": config})
        return
    if pulled.note:
        click.echo(f"note: {pulled.note}", err=True)
    click.echo(f"id:          {pulled.id}")
    click.echo(f"hub:         {pulled.repo_id}@{pulled.revision} (commit {pulled.commit})")
    click.echo(f"from:        {pulled.detail}")
    for path, digest in sorted((pulled.files or {}).items()):
        click.echo(f"file:        {path}  sha256 {digest}")
    click.echo("model:       " + json.dumps(config, sort_keys=True))


@main.command()
@click.argument("model_id")
@click.option("--revision", default=None, help="Branch, tag or commit sha (default: the catalogue's pinned one).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="HF cache (default: $HF_HOME/hub).")
@click.option("--offline", is_flag=True, help="Open no connection: use the cache or the copy shipped with avb-zoo.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(model_id: str, revision: str | None, cache_dir: str | None, offline: bool, quiet: bool, as_json: bool) -> None:
    """Fetch MODEL_ID's files from the Hub (sha256-checked) and print where they are and where they came from."""
    from avb_zoo.hub import fetch
    from avb_zoo.registry import resolution_note

    note = resolution_note(model_id)
    if note and not as_json:
        click.echo(f"note: {note}", err=True)
    pulled = fetch(model_id, revision=revision, cache_dir=cache_dir, offline=offline, progress=not quiet)
    if as_json:
        print_json(pulled.to_dict())
        return
    if pulled.note:
        click.echo(f"note: {pulled.note}", err=True)
    click.echo(f"{pulled.id}: {pulled.folder}")
    click.echo(f"from: {pulled.detail}")
    if pulled.commit:
        click.echo(f"commit: {pulled.commit}")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="Hub repo to publish to, ORG/NAME (created if missing).")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--revision", default=None, help="Branch to commit to (default: main).")
@click.option("--commit-message", default=None, help="Commit message.")
@click.option("--json", "as_json", is_flag=True, help="Print the commit URL and the files' sha256 as JSON.")
def push(
    folder: str, repo_id: str, private: bool, revision: str | None, commit_message: str | None, as_json: bool
) -> None:
    """Publish the model FOLDER to the Hub as one commit with a generated model card; prints the commit URL.

    The token comes from HF_TOKEN (or `hf auth login`); HF_ENDPOINT selects another Hub.
    """
    from pathlib import Path

    from avb_zoo.hub import push as push_folder
    from avb_zoo.hub import push_files, push_skipped, sha256_file

    skipped = push_skipped(Path(folder))
    for rel, why in skipped.items():
        click.echo(f"skipped {rel}: {why} (push uploads only the model's own files)", err=True)
    url = push_folder(folder, repo_id, private=private, revision=revision, commit_message=commit_message)
    if as_json:
        hashes = {rel: sha256_file(p) for rel, p in push_files(Path(folder)).items()}
        out = {"commit_url": url, "repo_id": repo_id, "revision": revision or "main", "files": hashes}
        print_json({**out, "skipped": skipped})
    else:
        click.echo(url)


PROVIDERS = click.Choice(["auto", "cpu", "cuda"])


def grid_options(command: Any) -> Any:
    """--scale and --labels/--no-labels of the commands that write an image grid."""
    command = click.option(
        "--labels/--no-labels", default=True, show_default=True, help="Number the grid's rows and columns."
    )(command)
    return click.option(
        "--scale", type=click.IntRange(1, 32), default=1, show_default=True, help="Enlarge each pixel this many times."
    )(command)


@main.command("export")
@click.argument("id_or_dir")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for onnx/ (default: the model's).")
@click.option("--id", "model_id", default=None, help="Model id written into the graphs (default: the run's recipe id).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--seed", type=int, default=None, help="Seed of the parity check's inputs (default: fresh).")
@click.option("--int8", is_flag=True, help="Also write an int8 sampler (onnx/sampler-int8.onnx), error measured.")
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
def export_graphs(
    id_or_dir: str, out: str | None, model_id: str | None, opset: int, seed: int | None, int8: bool, as_json: bool
) -> None:
    """Export the model in ID_OR_DIR to ONNX and check every graph against PyTorch through onnxruntime."""
    from avb_zoo.export import export_folder

    where, report = export_folder(id_or_dir, out, model_id=model_id, opset=opset, seed=seed)
    if int8:
        from avb_zoo.export.quantize import quantize_sampler

        report["int8_sampler"] = quantize_sampler(
            where, int(json.loads((where / "config.json").read_text())["latent_dim"])
        )
    if as_json:
        print_json(report)
        return
    batches = ", ".join(map(str, report["batch_sizes"]))
    for graph in report["graphs"].values():
        click.echo(f"{where / graph['file']}: max abs error {graph['max_abs_diff']:.2g} at batch sizes {batches}")
    for name, why in report["skipped"].items():
        click.echo(f"{name}: not exported ({why})")
    click.echo(f"report: {where / 'onnx' / 'verification.json'}")
    if int8:
        q = report["int8_sampler"]
        click.echo(
            f"{where / q['file']}: int8, max abs error {q['max_abs_error']:.2g} (mean {q['mean_abs_error']:.2g}) "
            f"against float32; {q['int8_ms']:.3g} ms vs {q['float32_ms']:.3g} ms per batch of {q['batch']}"
        )


@main.command()
@click.argument("id_or_dir")
@click.option("--provider", type=PROVIDERS, default="cpu", show_default=True, help="onnxruntime provider.")
@click.option("--json", "as_json", is_flag=True, help="Print the errors per graph as JSON.")
def verify(id_or_dir: str, provider: str, as_json: bool) -> None:
    """Run each ONNX graph's test_data_set on onnxruntime (no torch) and print the worst error.

    \b
    Example:
      avb-zoo verify toy-avb
    """
    from avb_zoo.runtime.verify import verify_model

    result = verify_model(id_or_dir, providers=provider)
    if as_json:
        print_json(result)
        return
    for graph, error in result["errors"].items():
        click.echo(f"{graph}: max abs error {error:.3g}")
    click.echo(f"worst: {result['worst']:.3g} ({result['graph']}), within {result['atol']:g}: passed")


@main.command()
@click.argument("id_or_dir")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Where to write z (.npy): [N, d], or [N, K, d] with --samples K > 1.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="z draws per image.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the encoder noise.")
@click.option("--moments", "moments_out", default=None, help="Also write the mean and variance of q(z|x) (.npz).")
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
def encode(
    id_or_dir: str, input_path: str, out: str, samples: int, seed: int, moments_out: str | None, provider: str
) -> None:
    """Encode INPUT (.npy N x 784 or N x 28 x 28, floats in [0, 1] or uint8; an image or a folder of images)."""
    import io

    import numpy as np

    from avb_zoo.runtime import Encoder, load_images
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all

    files = {}
    out_path = check_suffix(out, ".npy", "--out")
    moments_path = check_suffix(moments_out, ".npz", "--moments") if moments_out else None
    encoder = Encoder(id_or_dir, providers=provider)
    x = load_images(input_path, encoder.image_shape)
    z = encoder.encode(x, samples=samples, seed=seed)
    files[out_path] = npy_bytes(z)
    if moments_path is not None:
        mean, var = encoder.moments(x)
        buffer = io.BytesIO()
        np.savez(buffer, mean=mean, var=var)
        files[moments_path] = buffer.getvalue()
    write_all(files)
    click.echo(f"encoded {len(x)} image(s) to {out_path} {list(z.shape)} on {encoder.providers[0]}")


@main.command()
@click.argument("id_or_dir")
@click.option("-n", "count", type=click.IntRange(1, 65536), default=64, show_default=True, help="Number of samples.")
@click.option("--out", default=None, help="Where to write the image grid (.png, .jpg, ...: any format Pillow writes).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z ~ N(0, I) (and of --binarize).")
@click.option(
    "--npy",
    "npy_out",
    default=None,
    help="Also write the samples [n, x_dim] (.npy); for a posterior sampler (no input x), its draws [n, latent_dim].",
)
@click.option("--binarize", is_flag=True, help="Draw binary pixels instead of showing probabilities.")
@click.option("--columns", type=click.IntRange(min=1), default=None, help="Images per grid row.")
@grid_options
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
def sample(
    id_or_dir: str,
    count: int,
    out: str | None,
    seed: int,
    npy_out: str | None,
    binarize: bool,
    columns: int | None,
    scale: int,
    labels: bool,
    provider: str,
) -> None:
    """Sample images from the model in ID_OR_DIR with onnxruntime and write them as a grid (--out) or an array
    (--npy). A posterior sampler (a model with no input x, such as Eight Schools) writes its draws with --npy."""
    from avb_zoo.errors import InputError
    from avb_zoo.runtime import PosteriorSampler, open_sampler
    from avb_zoo.runtime.images import check_image_path, check_scale, image_bytes, sample_grid
    from avb_zoo.runtime.limits import check_grid
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all

    if out is None and npy_out is None:
        raise InputError("say where to write the samples: --out (an image grid) and/or --npy (an array)")
    out_path, fmt = check_image_path(out, "--out") if out else (None, None)
    check_scale(scale)
    npy_path = check_suffix(npy_out, ".npy", "--npy") if npy_out else None
    sampler = open_sampler(id_or_dir, providers=provider)
    if isinstance(sampler, PosteriorSampler):
        _write_posterior_draws(sampler, count, seed, out_path, npy_path)
        return
    if out_path is not None:
        check_grid(count, columns, sampler.image_shape, scale)  # before any sampling
    images = sampler.sample(count, seed=seed)
    if binarize:
        images = sampler.binarize(images, seed=seed)
    files = {}
    if out_path is not None:
        files[out_path] = image_bytes(sample_grid(images, sampler.image_shape, columns, scale, labels), fmt)
    if npy_path is not None:
        files[npy_path] = npy_bytes(images)
    write_all(files)
    click.echo(f"wrote {count} sample(s) to {' and '.join(str(p) for p in files)}")


def _write_posterior_draws(sampler: Any, count: int, seed: int, out_path: Any | None, npy_path: Any | None) -> None:
    """``avb-zoo sample`` for a posterior sampler: its draws [count, latent_dim] to --npy (it makes no images)."""
    from avb_zoo.errors import InputError
    from avb_zoo.runtime.outputs import npy_bytes, write_all

    if out_path is not None or npy_path is None:
        raise InputError(
            f"{sampler.folder} is a posterior sampler (no input x): it draws parameters, not images; "
            "write them with --npy"
        )
    draws = sampler.draw(count, seed=seed)
    write_all({npy_path: npy_bytes(draws)})
    names = sampler.parameter_names
    order = f" ({', '.join(names)})" if names else ""
    click.echo(f"wrote {count} posterior draw(s) [{count}, {sampler.latent_dim}]{order} to {npy_path}")


@main.command()
@click.argument("id_or_dir")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Where to write inputs and reconstructions side by side (any image format).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the encoder noise.")
@click.option("--npy", "npy_out", default=None, help="Also write the reconstructions [N, x_dim] (.npy).")
@grid_options
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
def reconstruct(
    id_or_dir: str, input_path: str, out: str, seed: int, npy_out: str | None, scale: int, labels: bool, provider: str
) -> None:
    """Encode INPUT and decode it again (pixel probabilities), with onnxruntime; pairs of input | reconstruction."""
    from avb_zoo.runtime import Encoder, Sampler, load_images
    from avb_zoo.runtime.images import check_image_path, check_scale, image_bytes, reconstruction_grid
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all

    out_path, fmt = check_image_path(out, "--out")
    check_scale(scale)
    npy_path = check_suffix(npy_out, ".npy", "--npy") if npy_out else None
    encoder = Encoder(id_or_dir, providers=provider)
    sampler = Sampler(encoder.folder, providers=provider)
    x = load_images(input_path, encoder.image_shape)
    recon = sampler.probabilities(encoder.encode(x, seed=seed))
    files = {out_path: image_bytes(reconstruction_grid(x, recon, encoder.image_shape, scale, labels), fmt)}
    if npy_path is not None:
        files[npy_path] = npy_bytes(recon)
    write_all(files)
    click.echo(f"reconstructed {len(x)} image(s) into {out_path}")


@main.command("export-web")
@click.argument("id_or_dir")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the page (new, or a page).")
def export_web(id_or_dir: str, out: str) -> None:
    """Write a static browser page for the model in ID_OR_DIR: index.html, its script, the model's sampler and
    encoder graphs and config, and onnxruntime-web (prepared once by `avb-zoo web-runtime`). Any static host
    serves the folder; `avb-zoo serve` does so on 127.0.0.1."""
    from avb_zoo.web.bundle import export_web as write_page

    folder = write_page(id_or_dir, out)
    click.echo(f"wrote the page to {folder}; serve it with `avb-zoo serve {folder}`")


@main.command()
@click.argument("id_or_dir")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free).")
@click.option("--isolated", is_flag=True, help="Send COOP/COEP headers so the page may run multi-threaded.")
def serve(id_or_dir: str, port: int, isolated: bool) -> None:
    """Serve the browser page of ID_OR_DIR (a folder export-web wrote, or any model: its page is written to a
    temporary folder first) on 127.0.0.1 only, until interrupted."""
    import tempfile
    from pathlib import Path

    from avb_zoo.web.bundle import MANIFEST
    from avb_zoo.web.bundle import export_web as write_page
    from avb_zoo.web.serve import HOST, make_server

    with tempfile.TemporaryDirectory(prefix="avb-zoo-page-") as tmp:
        folder = Path(id_or_dir)
        if not (folder / MANIFEST).is_file():
            folder = write_page(id_or_dir, Path(tmp) / "page")
        server = make_server(folder, port, isolated)
        click.echo(f"serving {folder} at http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops)", err=False)
        try:
            server.serve_forever()
        finally:
            server.server_close()


@main.command("web-runtime")
def web_runtime() -> None:
    """Fetch onnxruntime-web at the pinned version with npm (once), check it, and keep it for export-web."""
    from avb_zoo.web.vendor import ORT_WEB_VERSION, prepare

    folder = prepare()
    click.echo(f"onnxruntime-web {ORT_WEB_VERSION} is ready in {folder}")


@main.command("eval")
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
    """
    from avb_zoo.distributed import join_world, leave_world
    from avb_zoo.evaluation.evaluate import (
        EvalSettings,
        check_evaluation,
        estimate_folder,
        evaluate_folder,
        format_table,
    )

    ais, n_test, label = _preset_settings(ctx, id_or_dir, preset)
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
    )
    if estimate_only:
        click.echo(f"preset {label}: " + estimate_folder(id_or_dir, settings).describe())
        return
    launch_with = launch_settings(launch)
    if launch_with is not None:
        from avb_zoo.launch import launch as start

        check_evaluation(id_or_dir, settings)
        start("avb_zoo.evaluation", worker_argv(ctx), launch_with, "evaluation")
        return
    try:
        result, path = evaluate_folder(
            id_or_dir,
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


def add_commands() -> None:
    """The commands kept in modules of their own (avb_zoo/commands)."""
    from avb_zoo.commands.data import data
    from avb_zoo.commands.plot import plot

    main.add_command(data)
    main.add_command(plot)


add_commands()

if __name__ == "__main__":
    main()
