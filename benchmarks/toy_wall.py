"""The toy recipe end to end: wall time of ``avb-zoo train toy-avb``, its exact log-likelihood, and the floor.

    python benchmarks/toy_wall.py [--threads auto 1 2] [--repeat 2]

Runs go round-robin over the thread settings (order reversed every round). Each run is the command a user
types, in a fresh process (its wall time includes Python's start, imports and
the checkpoints), into a fresh folder, with ``--threads N`` or, for "auto", no thread setting and no thread
variable. The trained model's exact log-likelihood is the mean over the toy's four points of log p(x) by
quadrature (avb_zoo.evaluation.quadrature; the recipe is judged by it, >= -1.42). The floor is the time of
the matrix products of the recipe's steps alone: one step's products (mm/addmm as the eager engine calls
them) are recorded, replayed back to back on one thread, and scaled to the recipe's steps: no
implementation of this recipe's arithmetic in float32 on this machine's kernels runs faster on one thread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from products import materialise, record, replay

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood
from avb_zoo.modelling.factory import load
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model

RECIPE = "toy-avb"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def train_once(threads: str, folder: Path) -> tuple[float, dict]:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    script = Path(sys.executable).with_name("avb-zoo")
    launcher = [str(script)] if script.exists() else [sys.executable, "-c", "from avb_zoo.cli import main; main()"]
    command = [*launcher, "train", RECIPE, "--out", str(folder), "--quiet", "--json"]
    if threads != "auto":
        command += ["--threads", threads]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"train failed:\n{done.stderr[-2000:]}")
    return seconds, json.loads(done.stdout)


def exact_log_likelihood(folder: Path) -> float:
    model = load(folder).double()
    points = torch.eye(4, dtype=torch.float64)
    return float(quadrature_log_likelihood(model, points).mean())


def floor_seconds(repeat: int = 200) -> tuple[float, int]:
    """(seconds of the recipe's matrix products alone on one thread, steps)."""
    torch.set_num_threads(1)
    recipe = find_recipe(RECIPE)
    settings = recipe.train
    model = init_model(recipe, 0).train()
    optimizers = make_optimizers(model, settings)
    source = make_batch_source(settings.data, None, None, settings.binarize)
    x = source.batch(0, 0, settings.batch_size)
    calls = materialise(record(lambda: train_step(model, optimizers, x, 0, 0, settings)))
    replay(calls)
    started = time.perf_counter()
    for _ in range(repeat):
        replay(calls)
    per_step = (time.perf_counter() - started) / repeat
    return per_step * settings.steps, settings.steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", nargs="+", default=["auto", "1", "2"])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"{RECIPE}: torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    print("| threads | wall s (each run) | median wall s | threads used (then changes) | exact log p(x) |")
    print("|---|---|---|---|---|")
    walls: dict[str, list[float]] = {t: [] for t in args.threads}
    used: dict[str, set[str]] = {t: set() for t in args.threads}
    exact: dict[str, list[float]] = {t: [] for t in args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):  # round-robin: a slow spell of the machine falls on every setting alike
            for threads in args.threads if i % 2 == 0 else list(reversed(args.threads)):
                folder = Path(tmp) / f"{threads}-{i}"
                seconds, summary = train_once(threads, folder)
                walls[threads].append(seconds)
                later = summary.get("threads_later")
                used[threads].add(f"{summary.get('threads')}" + (f" then {later}" if later else ""))
                exact[threads].append(exact_log_likelihood(folder))
    for threads in args.threads:
        runs, median = ", ".join(f"{w:.1f}" for w in walls[threads]), statistics.median(walls[threads])
        exacts = ", ".join(f"{e:.4f}" for e in exact[threads])
        print(f"| {threads} | {runs} | {median:.1f} | {', '.join(sorted(used[threads]))} | {exacts} |")
    floor, steps = floor_seconds()
    print(f"floor: the matrix products of {steps} steps alone, one thread: {floor:.1f} s")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
