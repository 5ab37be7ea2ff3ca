"""``train(..., seeds=[...])`` in one process: one run folder per seed, trained as one stacked model.

``OUT/seed-<s>`` is an ordinary run folder (config.json, model.safetensors, training_state.safetensors),
with the parameters, optimiser state and checkpoints the solo run with seed s would write, so ``eval``,
``export`` and a solo ``--resume`` accept it. A model whose loss turns non-finite stops, keeping its last
good checkpoint (as a solo run would), and the others go on; the result says which stopped.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from avb_zoo.catalogue.recipes import Recipe
from avb_zoo.compute.precision import check_precision, resolve_precision
from avb_zoo.compute.threads import ThreadGovernor, check_threads, choose_threads, mean_product_flops
from avb_zoo.errors import CheckpointError, ConfigError, shown
from avb_zoo.modelling.weights import save
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.checkpoint import RunInfo, load_training_state, save_training_state
from avb_zoo.training.options import check_batch_fits
from avb_zoo.training.stacked import StackedModels
from avb_zoo.training.step import StepResult, make_optimizers
from avb_zoo.training.trainer import TrainResult, _resolve_dtype, check_resume, init_model, resolve_settings
from avb_zoo.util.fileio import ensure_writable_dir

MAX_SEEDS = 64  # one process holds every model, its Adam moments and its activations


def parse_seeds(text: str) -> list[int]:
    """``"0-7"``, ``"0,3,5"`` or a mix (``"0-3,8"``): distinct non-negative seeds in the order given."""
    seeds: list[int] = []
    for part in text.split(","):
        part = part.strip()
        first, dash, last = part.partition("-")
        if not (first.isdigit() and (not dash or last.isdigit())):
            raise ConfigError(f"--seeds {shown(text)}: write a range such as 0-7 or a list such as 0,3,5")
        lo, hi = int(first), int(last) if dash else int(first)
        if hi < lo:
            raise ConfigError(f"--seeds {shown(text)}: the range {part} runs backwards")
        if hi - lo + 1 + len(seeds) > MAX_SEEDS:
            raise ConfigError(f"--seeds {shown(text)}: at most {MAX_SEEDS} seeds in one process")
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {shown(text)} names a seed twice")
    return seeds


def seed_folder(out: str | Path, seed: int) -> Path:
    return Path(out) / f"seed-{seed}"


@dataclass
class StackedResult:
    """Each seed's run (``runs``) and, for the seeds that stopped, why (``diverged``)."""

    runs: dict[int, TrainResult]
    diverged: dict[int, str]
    steps_run: int = 0
    seconds: float = 0.0

    @property
    def examples_per_second(self) -> float:
        """Examples per second summed over the models."""
        batch = next(iter(self.runs.values())).batch_size if self.runs else 0
        return self.steps_run * batch * len(self.runs) / self.seconds if self.seconds > 0 else 0.0


def train_seeds(
    recipe: str | Recipe,
    out: str | Path,
    seeds: list[int],
    *,
    device: str | torch.device = "cpu",
    max_steps: int | None = None,
    resume: bool = False,
    data_dir: str | Path | None = None,
    data: Any = None,
    batch_size: int | None = None,
    checkpoint_every: int | None = None,
    dtype: str | torch.dtype = "float32",
    progress: bool = True,
    on_step: Callable[[int, dict[int, StepResult]], None] | None = None,
    precision: str | None = None,
    threads: int | None = None,
) -> StackedResult:
    """Train ``recipe`` once per seed into ``out/seed-<s>``, all seeds stacked in this process.

    The arguments are those of :func:`avb_zoo.train` (one process, no torchrun); model k's folder ends as the
    solo run with seed ``seeds[k]`` would leave it.
    """
    recipe, settings, total = resolve_settings(recipe, batch_size, checkpoint_every, max_steps)
    if not seeds or len(set(seeds)) != len(seeds) or len(seeds) > MAX_SEEDS:
        raise ConfigError(f"seeds must be 1 to {MAX_SEEDS} distinct integers, got {seeds}")
    dtype_name, torch_dtype = _resolve_dtype(dtype)
    device = torch.device(device)
    if precision is not None:
        check_precision(precision, device, dtype_name)
    check_threads(threads)
    folders = [Path(seed_folder(out, s)) for s in seeds]
    saved = [check_resume(f, resume, recipe, s, settings.batch_size, dtype_name, "host", precision)  # host noise
             for f, s in zip(folders, seeds, strict=True)]  # fmt: skip
    kept = {info.precision for info in saved if info is not None}
    if len(kept) > 1:
        raise CheckpointError(f"the runs to resume were trained in different precisions {sorted(kept)}")
    precision, note = resolve_precision(precision, settings.precision, device, dtype_name, next(iter(kept), None))
    if note is not None:
        warnings.warn(f"avb-zoo: {recipe.id}: {note}", stacklevel=2)
    source = make_batch_source(settings.data, data_dir, data, settings.binarize)
    if source.x_dim != recipe.model["x_dim"]:
        raise ConfigError(
            f"the data have {source.x_dim} values per example; {recipe.id} expects {recipe.model['x_dim']}"
        )
    check_batch_fits(settings.batch_size, getattr(source, "n", None), "the training data")
    folders = [ensure_writable_dir(f) for f in folders]  # only now: a refused run leaves no empty folders
    models = [init_model(recipe, s).to(device, torch_dtype).train() for s in seeds]
    optimizers = [make_optimizers(m, settings) for m in models]
    runs = zip(folders, models, optimizers, strict=True)
    starts = [load_training_state(f, m, o).step if resume else 0 for f, m, o in runs]
    if len(set(starts)) > 1:
        at = ", ".join(f"seed {s} at step {n}" for s, n in zip(seeds, starts, strict=True))
        raise CheckpointError(f"the runs to resume stand at different steps ({at}); resume them separately")
    step = first_step = starts[0]
    stack = StackedModels(models, optimizers, seeds, settings, precision)
    governor = ThreadGovernor(choose_threads(threads, len(seeds) * mean_product_flops(models[0], settings.batch_size)))
    row_of = {s: i for i, s in enumerate(seeds)}

    def checkpoint(at: int, which: list[int]) -> None:
        stack.write_back(optimizers)
        for s in which:
            i = row_of[s]
            info = RunInfo(recipe.id, s, settings.batch_size, at, dtype_name, precision=precision)
            save_training_state(folders[i], models[i], optimizers[i], info)
            save(models[i], folders[i], {"recipe_id": recipe.id, "step": str(at), "seed": str(s)})

    if step == 0 and not resume:
        checkpoint(0, seeds)
    diverged: dict[int, str] = {}
    last: dict[int, StepResult] = {}
    last_saved = step
    started = time.perf_counter()
    bar = tqdm(total=total, initial=min(step, total), desc=recipe.id, disable=not progress, dynamic_ncols=True)
    try:
        while step < total and stack.seeds:
            x = torch.stack([source.batch(s, step, settings.batch_size) for s in stack.seeds])
            active = list(stack.seeds)
            governor.tick()
            results, dropped = stack.step(x.to(device, torch_dtype), step)
            for s, r in zip(active, results, strict=True):
                if s in dropped:
                    diverged[s] = (
                        f"{recipe.id} seed {s}: the loss became non-finite at step {step} (primal {r.primal}, "
                        f"adversary {r.adversary}); the last good checkpoint (step {last_saved}) is kept"
                    )
                else:
                    last[s] = r
            step += 1
            if on_step is not None:
                on_step(step, {s: last[s] for s in stack.seeds})
            if step % settings.checkpoint_every == 0 or step == total:
                bad = [s for s, ok in zip(stack.seeds, stack.finite_rows(), strict=True) if not ok]
                for s in bad:
                    diverged[s] = (
                        f"{recipe.id} seed {s}: a parameter became non-finite by step {step} (the loss was still "
                        f"finite); the last good checkpoint (step {last_saved}) is kept"
                    )
                stack.drop(bad)
                checkpoint(step, stack.seeds)
                last_saved = step
            bar.update(1)
    finally:
        bar.close()
        governor.restore()
    seconds = time.perf_counter() - started
    runs = {
        s: TrainResult(
            models[i].eval(),
            folders[i],
            step,
            last.get(s),
            steps_run=step - first_step,
            seconds=seconds,
            batch_size=settings.batch_size,
            precision=precision,
            threads=governor.record(),
        )  # fmt: skip
        for s, i in row_of.items()
        if s not in diverged
    }
    return StackedResult(runs, diverged, step - first_step, seconds)
