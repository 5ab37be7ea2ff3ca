"""Where a stacked step's time goes: K solo steps and one stacked step of K models, each against its matrix
products replayed alone.

    python benchmarks/stacked_floor.py [--recipe mnist-avb-ac-v1] [--k 8] [--steps 6] [--threads 1]

For the solo side one model's step (the trainer's ``train_step``) is timed and its products (recorded with
benchmarks/products.py) are replayed K times; for the stacked side ``StackedModels.step`` and its products
(batched: bmm, baddbmm, grouped convolutions). The columns say how much of each step is arithmetic on the
products (floor / step) and whether the batched products themselves are faster per FLOP than K separate
ones (solo floor / stacked floor): stacking can only win what the solo step spends outside its products,
plus whatever the batched kernels gain.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from products import materialise, record, replay

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.training.stacked import StackedModels
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model


def timed(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist-avb-ac-v1")
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6, help="timed repetitions (median)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    recipe = find_recipe(args.recipe)
    settings = recipe.train
    k, batch = args.k, settings.batch_size
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(k, batch, recipe.model["x_dim"], generator=g) < 0.3).float()
    solo = init_model(recipe, 0).train()
    solo_opts = make_optimizers(solo, settings)
    models = [init_model(recipe, s).train() for s in range(k)]
    stack = StackedModels(models, [make_optimizers(m, settings) for m in models], list(range(k)), settings)
    counter = iter(range(10**6))
    solo_products = materialise(record(lambda: train_step(solo, solo_opts, x[0], 0, 0, settings)))
    stacked_products = materialise(record(lambda: stack.step(x, 0)))
    solo_step = k * timed(lambda: train_step(solo, solo_opts, x[0], 0, next(counter), settings), args.steps)
    stacked_step = timed(lambda: stack.step(x, next(counter)), args.steps)
    solo_floor = k * timed(lambda: replay(solo_products), args.steps)
    stacked_floor = timed(lambda: replay(stacked_products), args.steps)
    print(
        f"{args.recipe}, K = {k}, batch {batch}, {torch.get_num_threads()} thread(s), medians of {args.steps}; "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("| side | step s (K models) | products alone s | products / step |")
    print("|---|---|---|---|")
    print(f"| {k} solo steps | {solo_step:.3f} | {solo_floor:.3f} | {solo_floor / solo_step:.2f} |")
    print(f"| 1 stacked step | {stacked_step:.3f} | {stacked_floor:.3f} | {stacked_floor / stacked_step:.2f} |")
    print(
        f"stacked / solo speed-up {solo_step / stacked_step:.2f}x; batched products vs separate ones "
        f"{solo_floor / stacked_floor:.2f}x; the most stacking could reach with free non-product work: "
        f"{solo_step / stacked_floor:.2f}x"
    )


if __name__ == "__main__":
    main()
