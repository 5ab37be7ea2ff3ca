"""Training throughput of every catalogue recipe on the current device: examples per second.

Runs each recipe's real training step (the same ``train_step`` the trainer uses) for a few warm-up steps,
then times ``--steps`` steps. MNIST recipes read ``--data-dir`` / $AVB_ZOO_DATA, falling back to the small
subset committed under tests/data when the full files are absent (the speed does not depend on which).

    python benchmarks/train_throughput.py [--device cpu|cuda] [--steps 20] [--recipes toy-avb,mnist-vae]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import load_catalogue
from avb_zoo.compute.device import resolve_device
from avb_zoo.errors import DataError
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model

SUBSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist-subset"


def source_for(recipe, data_dir: str | None):
    try:
        return make_batch_source(recipe.train.data, data_dir, None, recipe.train.binarize), "full"
    except DataError:
        return make_batch_source(recipe.train.data, SUBSET, None, recipe.train.binarize), "subset"


def measure(recipe, device: torch.device, steps: int, warmup: int, data_dir: str | None) -> dict:
    source, which = source_for(recipe, data_dir)
    model = init_model(recipe, seed=0).to(device).train()
    optimizers = make_optimizers(model, recipe.train)
    batch = recipe.train.batch_size
    for step in range(warmup):
        train_step(model, optimizers, source.batch(0, step, batch).to(device), 0, step, recipe.train)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for step in range(warmup, warmup + steps):
        train_step(model, optimizers, source.batch(0, step, batch).to(device), 0, step, recipe.train)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "recipe": recipe.id,
        "batch": batch,
        "adv_steps": recipe.train.adversary_steps if model.adversary is not None else 0,
        "ms/step": 1000 * seconds / steps,
        "examples/s": batch * steps / seconds,
        "data": which if recipe.train.data == "mnist" else recipe.train.data,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--recipes", default=None, help="comma-separated ids (default: the whole catalogue)")
    parser.add_argument("--data-dir", default=os.environ.get("AVB_ZOO_DATA"))
    args = parser.parse_args()
    device = resolve_device(args.device)
    catalogue = load_catalogue()
    ids = args.recipes.split(",") if args.recipes else sorted(catalogue)
    from avb_zoo.catalogue.recipes import find_recipe

    rows = [measure(find_recipe(i, catalogue), device, args.steps, args.warmup, args.data_dir) for i in ids]
    print(
        f"device: {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}), "
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.steps} timed steps each"
    )
    header = f"{'recipe':28} {'batch':>6} {'adv':>4} {'ms/step':>9} {'examples/s':>11}  data"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['recipe']:28} {r['batch']:>6} {r['adv_steps']:>4} {r['ms/step']:>9.1f} "
            f"{r['examples/s']:>11.0f}  {r['data']}"
        )


if __name__ == "__main__":
    main()
