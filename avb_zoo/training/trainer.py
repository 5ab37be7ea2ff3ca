"""``avb_zoo.train``: run a catalogue recipe to a folder, with checkpoints, exact resume and a progress bar.

The run folder holds ``config.json`` and ``model.safetensors`` (+ ``adversary.safetensors``), the model as
users load it, and ``training_state.safetensors``, everything needed to continue. All are written
atomically every ``checkpoint_every`` steps and at the end. A loss that turns NaN or infinite stops the run
with TrainingDiverged and leaves the last good checkpoint in place.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from avb_zoo.catalogue.recipes import Recipe, TrainSettings, find_recipe
from avb_zoo.compute.distributed import World, join_world, launch_id, restart_count, world_device
from avb_zoo.compute.precision import check_precision, resolve_precision
from avb_zoo.compute.rng import derive_seed
from avb_zoo.compute.threads import ThreadGovernor, check_threads, choose_threads, mean_product_flops
from avb_zoo.errors import CheckpointError, ConfigError, TrainingDiverged, TrainingInterrupted, shown
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import save
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.checkpoint import (
    STATE_FILE,
    RunInfo,
    load_training_state,
    read_run_info,
    save_training_state,
)
from avb_zoo.training.engines import check_engine, default_noise, make_engine
from avb_zoo.training.history import HistoryLog
from avb_zoo.training.interrupt import sigterm_as_interrupt
from avb_zoo.training.options import check_batch_fits, check_max_steps
from avb_zoo.training.players import make_players
from avb_zoo.training.step import StepResult, make_optimizers
from avb_zoo.util.fileio import ensure_writable_dir, remove_stale_temps
from avb_zoo.util.progress import PROGRESS_MODES, StepLines


@dataclass
class TrainResult:
    model: AVBModel
    out: Path
    step: int
    last: StepResult | None
    world: World = field(default_factory=World)
    steps_run: int = 0  # steps taken by this call (a resumed run starts part-way)
    seconds: float = 0.0  # wall time of those steps, checkpoints included
    batch_size: int = 0  # the global batch
    engine: str = "eager"  # the engine that ran (after any fall-back)
    noise: str = "host"  # the run's noise stream
    engine_notes: list[str] = field(default_factory=list)  # why an engine fell back
    history: list[tuple[int, StepResult]] = field(default_factory=list)  # losses every report_every steps
    training_seconds: float = 0.0  # wall time of the whole run up to ``step``, over every sitting (from history)
    precision: str = "float32"  # the forward passes' matrix products
    threads: dict[str, object] = field(default_factory=dict)  # intra-op threads used and why (ThreadGovernor.record)

    @property
    def examples_per_second(self) -> float:
        """Global-batch examples per second over the steps of this call."""
        return self.steps_run * self.batch_size / self.seconds if self.seconds > 0 else 0.0


def interrupted(recipe_id: str, out: Path, step: int, last_saved: int) -> TrainingInterrupted:
    """The error of a run stopped by Ctrl-C or SIGTERM, naming the checkpoint actually on disk (read back: the
    signal may have come while one was being written)."""
    try:
        saved = read_run_info(out).step
    except (CheckpointError, OSError):
        saved = None if step == 0 else last_saved
    if saved is None:
        return TrainingInterrupted(
            f"{recipe_id}: interrupted before the first checkpoint; nothing to resume in {out}",
            checkpoint_step=-1,
            out=str(out),
        )
    return TrainingInterrupted(
        f"{recipe_id}: interrupted at step {step}; stopped at the checkpoint of step {saved} in {out}",
        checkpoint_step=saved,
        out=str(out),
    )


def init_model(recipe: Recipe, seed: int) -> AVBModel:
    """The recipe's model with parameters initialised from the seed alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return AVBModel(recipe.model)


def finite_state(model: AVBModel) -> bool:
    """Whether every floating-point parameter and buffer is finite: a finite loss can still come with a NaN
    gradient, and such an update must not overwrite the last good checkpoint."""
    return all(bool(torch.isfinite(t).all()) for t in model.state_dict().values() if t.is_floating_point())


DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _resolve_dtype(dtype: str | torch.dtype) -> tuple[str, torch.dtype]:
    name = str(dtype).removeprefix("torch.")
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype {shown(str(dtype))}: use one of {sorted(DTYPES)}")
    return name, DTYPES[name]


def resolve_resume(out: Path, resume: bool) -> bool:
    """Whether this process continues the run in ``out``: when asked, or when torchrun's elastic agent has
    restarted the group of the launch that wrote the checkpoint (the same rendezvous id)."""
    if resume or restart_count() == 0 or not (out / STATE_FILE).exists():
        return resume
    return bool(launch_id()) and read_run_info(out).launch_id == launch_id()


def check_resume(
    out: Path,
    resume: bool,
    recipe: Recipe,
    seed: int,
    batch_size: int,
    dtype: str = "float32",
    noise: str | None = None,
    precision: str | None = "float32",
) -> RunInfo | None:
    """The run folder agrees with the request: empty for a new run, the same run for ``resume`` (whose saved
    RunInfo is returned; ``noise`` None accepts the saved stream)."""
    has_state = (out / STATE_FILE).exists()
    if has_state and not resume:
        raise CheckpointError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    if resume and not has_state:
        raise CheckpointError(f"nothing to resume: {out} holds no {STATE_FILE}")
    if resume:
        info = read_run_info(out)
        mismatches = [
            f"{what} {shown(saved)} (asked {shown(asked)})"
            for what, saved, asked in (
                ("recipe", info.recipe_id, recipe.id),
                ("seed", info.seed, seed),
                ("batch size", info.batch_size, batch_size),
                ("dtype", info.dtype, dtype),
                ("noise stream", info.noise, noise or info.noise),
                ("precision", info.precision, precision or info.precision),
            )
            if saved != asked
        ]
        if mismatches:
            raise CheckpointError(f"cannot resume {out}: it was trained with " + ", ".join(mismatches))
        return info
    return None


def resolve_settings(
    recipe: str | Recipe, batch_size: int | None, checkpoint_every: int | None, max_steps: int | None
) -> tuple[Recipe, TrainSettings, int]:
    """(recipe, its settings with the call's overrides, the step to stop at), each checked."""
    recipe = find_recipe(recipe) if isinstance(recipe, str) else recipe
    settings = recipe.train
    if batch_size is not None:
        settings = replace(settings, batch_size=batch_size)
    if checkpoint_every is not None:
        settings = replace(settings, checkpoint_every=checkpoint_every)
    settings.check(recipe.id)
    check_max_steps(max_steps)
    return recipe, settings, settings.steps if max_steps is None else min(settings.steps, max_steps)


def train(
    recipe: str | Recipe,
    out: str | Path,
    *,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    seed: int = 0,
    resume: bool = False,
    data_dir: str | Path | None = None,
    data: Any = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    dtype: str | torch.dtype = "float32",
    progress: bool | str = True,
    on_step: Callable[[int, StepResult], None] | None = None,
    engine: str = "eager",
    noise: str | None = None,
    report_every: int = 100,
    max_seconds: float | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train ``recipe`` (an id such as ``"toy-avb"`` or a Recipe) into the folder ``out``.

    ``max_steps`` stops early (the run can be resumed later); ``data`` replaces the recipe's data set with
    user images ([N, D] floats in [0, 1] or uint8). ``on_step(step, result)`` is called after every step.

    Under torchrun every process calls this with the same arguments: the batch size is the global batch,
    split evenly across ranks, every random draw is keyed by (seed, step) for the whole global batch, rank 0
    alone writes the folder, and a group restarted by torchrun's elastic agent resumes from the checkpoint.

    ``engine`` (eager, compiled, graphs; see :mod:`avb_zoo.training.engines`) changes how a step runs, not
    what it computes; ``noise`` (host or device) is the run's noise stream: None takes the one a resumed run
    has, else the engine's default. The fast engines read their losses back every ``report_every`` steps
    (and at every checkpoint), not every step; those reads make the returned ``history``. ``max_seconds``
    stops (with a checkpoint) at the first step that ends past that much training wall time, counted over
    every sitting of the run (a resumed run starts from the time its checkpoint's history row records).

    ``precision`` "bf16" runs the forward passes' matrix products in bfloat16 where the device computes them
    natively (see :mod:`avb_zoo.compute.precision`); None takes the resumed run's, else the recipe's (a recipe
    preferring bf16 trains in float32, with a warning, where bf16 cannot run). A run resumes only in the
    precision it was started with.

    ``threads`` fixes torch's intra-op threads; None chooses them (a thread variable such as OMP_NUM_THREADS when
    set, else the physical cores other programs leave idle, re-checked as the run goes; see
    :mod:`avb_zoo.compute.threads`). The count used is in ``TrainResult.threads``.

    ``progress``: True shows a bar when stderr is a terminal and prints a line every ``report_every`` steps
    when it is not (a log file, a notebook's captured output); "bar" or "lines" forces one, False shows nothing.
    Every report is also appended to ``history.jsonl`` in ``out``.
    Ctrl-C or SIGTERM stops the run with TrainingInterrupted, which names the checkpoint on disk; hidden temp
    files a killed run left in ``out`` are removed when a run starts there.
    """
    if progress not in PROGRESS_MODES:
        raise ConfigError(f"progress must be one of {list(PROGRESS_MODES)}, got {progress!r}")
    if progress is True:  # a bar on a terminal; in a log file a bar is carriage returns, so report lines there
        progress = "bar" if sys.stderr.isatty() else "lines"
    recipe, settings, total = resolve_settings(recipe, batch_size, checkpoint_every, max_steps)
    dtype_name, torch_dtype = _resolve_dtype(dtype)
    if max_seconds is not None and not max_seconds > 0:
        raise ConfigError(f"max_seconds must be positive, got {max_seconds}")
    if not isinstance(report_every, int) or report_every < 1:
        raise ConfigError(f"report_every must be a positive integer, got {shown(report_every)}")
    if precision is not None:
        check_precision(precision, device, dtype_name)
    check_threads(threads)
    world = join_world(device)
    world.check_divides(settings.batch_size)
    device = world_device(torch.device(device), world)
    out = Path(out)
    resume = resolve_resume(out, resume)
    saved = check_resume(out, resume, recipe, seed, settings.batch_size, dtype_name, noise, precision)
    precision, precision_note = resolve_precision(
        precision, settings.precision, device, dtype_name, saved.precision if saved else None
    )
    if precision_note is not None and world.is_main:
        warnings.warn(f"avb-zoo: {recipe.id}: {precision_note}", stacklevel=2)
    noise = noise or (saved.noise if saved else default_noise(engine))
    check_engine(engine, noise, world)
    source = make_batch_source(settings.data, data_dir, data, settings.binarize)
    if source.x_dim != recipe.model["x_dim"]:
        raise ConfigError(
            f"the data have {source.x_dim} values per example; {recipe.id} expects {recipe.model['x_dim']}"
        )
    check_batch_fits(settings.batch_size, getattr(source, "n", None), "the training data")
    if world.is_main:  # only now, so that a run refused above leaves no empty folder behind
        ensure_writable_dir(out)
        remove_stale_temps(out)  # a run killed mid-write (SIGKILL, power) leaves them; nothing else writes here
    model = init_model(recipe, seed).to(device, torch_dtype).train()
    governor = ThreadGovernor(
        choose_threads(threads, mean_product_flops(model, settings.batch_size // world.size), world.local_size),
        world.local_size,
    )
    optimizers = make_optimizers(model, settings)
    step = load_training_state(out, model, optimizers).step if resume else 0
    players = make_players(model, world)  # collective: every rank has passed the checks above
    runner = make_engine(engine, noise, model, optimizers, settings, source, seed, step, players, world, precision)
    run_info = RunInfo(recipe.id, seed, settings.batch_size, 0, dtype_name, launch_id(), noise, precision)

    def checkpoint(at: int) -> None:
        if world.is_main:
            save_training_state(out, model, optimizers, replace(run_info, step=at))
            save(model, out, {"recipe_id": recipe.id, "step": str(at), "seed": str(seed)})

    last: StepResult | None = None
    history: list[tuple[int, StepResult]] = []
    last_saved = first_step = step
    started = time.perf_counter()
    show = progress in (True, "bar") and world.is_main
    elbo_key = "elbo" if model.method == "vae" else "elbo_estimate"  # AVB: the adversary's estimate
    lines = StepLines(recipe.id, total, step, elbo_key) if progress == "lines" and world.is_main else None
    log = HistoryLog(out, step if resume else None) if world.is_main else None
    prior_seconds = log.seconds_before if log is not None else 0.0  # earlier sittings, up to the checkpoint
    bar = tqdm(total=total, initial=min(step, total), desc=recipe.id, disable=not show, dynamic_ncols=True)
    with sigterm_as_interrupt(enabled=not world.distributed):
        try:
            if step == 0 and not resume:
                checkpoint(0)
            while step < total:
                try:
                    governor.tick()
                    runner.run(step)
                    step += 1
                    if max_seconds is not None and prior_seconds + time.perf_counter() - started >= max_seconds:
                        total = step
                    checkpoint_due = step % settings.checkpoint_every == 0 or step == total
                    if runner.synchronous or on_step is not None or checkpoint_due or step % report_every == 0:
                        last = result = runner.result()
                        if step % report_every == 0 or step == total:
                            history.append((step, result))
                            if log is not None:
                                log.append(step, result, time.perf_counter() - started)
                            if lines is not None:
                                lines.report(step, result)
                        if on_step is not None:
                            on_step(step, result)
                        if show and (step % 10 == 0 or step == total):
                            bar.set_postfix(
                                {
                                    "primal": f"{result.primal:.4g}",
                                    "adv": f"{result.adversary:.3f}",
                                    elbo_key: f"{result.elbo:.3f}",
                                }
                            )
                except TrainingDiverged as err:
                    raise TrainingDiverged(
                        f"{recipe.id}: {err}; the last good checkpoint (step {last_saved}) is kept in {out}"
                    ) from None
                if checkpoint_due:
                    if not finite_state(model):
                        raise TrainingDiverged(
                            f"{recipe.id}: a parameter became non-finite by step {step} (the loss was still finite); "
                            f"the last good checkpoint (step {last_saved}) is kept in {out}"
                        )
                    checkpoint(step)
                    last_saved = step
                bar.update(1)
        except KeyboardInterrupt:
            bar.close()
            raise interrupted(recipe.id, out, step, last_saved) from None
        finally:
            bar.close()
            if log is not None:
                log.close()
            governor.restore()  # an API caller gets its own torch thread count back
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - started
    return TrainResult(
        model.eval(),
        out,
        step,
        last,
        world,
        step - first_step,
        seconds,
        settings.batch_size,
        runner.name,
        noise,
        runner.notes,
        history,
        prior_seconds + seconds,
        precision,
        governor.record(),
    )
