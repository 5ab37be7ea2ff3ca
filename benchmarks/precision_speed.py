"""Training steps/s in float32 and in bf16 (``--precision bf16``), side by side in one process.

    python benchmarks/precision_speed.py [--recipes mnist-avb-ac-v1 mnist-avb-ac-v2] [--threads 1 2]
                                         [--steps 40] [--rounds 5] [--data-dir DIR]

Both sides run the trainer's reference step (``train_step``, the eager engine) on the recipe's real batches
(MNIST from --data-dir / $AVB_ZOO_DATA, else the subset committed under tests/data; the speed does not
depend on which), each on its own model from the same initial parameters. Blocks of ``--steps`` steps
alternate float32, bf16, bf16, float32, ... for ``--rounds`` rounds so that other work slows both alike;
the table shows the median steps/s over blocks and their ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.precision import check_precision
from avb_zoo.errors import DataError
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model

SUBSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist-subset"
PRECISIONS = ("float32", "bf16")


def source_for(recipe, data_dir: str | None):
    try:
        return make_batch_source(recipe.train.data, data_dir, None, recipe.train.binarize)
    except DataError:
        return make_batch_source(recipe.train.data, SUBSET, None, recipe.train.binarize)


def measure(recipe_id: str, steps: int, rounds: int, data_dir: str | None) -> dict[str, float]:
    recipe = find_recipe(recipe_id)
    settings = recipe.train
    source = source_for(recipe, data_dir)
    runs = {}
    for precision in PRECISIONS:
        model = init_model(recipe, 0).train()
        runs[precision] = (model, make_optimizers(model, settings))
    next_step = dict.fromkeys(PRECISIONS, 0)
    rates: dict[str, list[float]] = {p: [] for p in PRECISIONS}

    def block(precision: str, timed: bool) -> None:
        model, optimizers = runs[precision]
        start = next_step[precision]
        began = time.perf_counter()
        for step in range(start, start + steps):
            x = source.batch(0, step, settings.batch_size)
            train_step(model, optimizers, x, 0, step, settings, precision=precision)
        if timed:
            rates[precision].append(steps / (time.perf_counter() - began))
        next_step[precision] = start + steps

    for precision in PRECISIONS:  # warm-up
        block(precision, timed=False)
    for r in range(rounds):
        for precision in PRECISIONS if r % 2 == 0 else tuple(reversed(PRECISIONS)):
            block(precision, timed=True)
    return {p: statistics.median(v) for p, v in rates.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["mnist-avb-ac-v1", "mnist-avb-ac-v2"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--steps", type=int, default=40, help="steps per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("AVB_ZOO_DATA"))
    args = parser.parse_args()
    check_precision("bf16", "cpu")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, blocks of {args.steps} steps, {args.rounds} rounds, "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print("| recipe | threads | float32 steps/s | bf16 steps/s | bf16 / float32 |")
    print("|---|---|---|---|---|")
    for recipe_id in args.recipes:
        for threads in args.threads:
            torch.set_num_threads(threads)
            rate = measure(recipe_id, args.steps, args.rounds, args.data_dir)
            print(
                f"| {recipe_id} | {threads} | {rate['float32']:.2f} | {rate['bf16']:.2f} | "
                f"{rate['bf16'] / rate['float32']:.2f} |",
                flush=True,
            )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
