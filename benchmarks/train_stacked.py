"""Training K models of one recipe: K solo runs one after another vs one stacked run (examples/s, all models).

Both sides run the real code: the solo side the trainer's ``train_step`` per model, the stacked side
``StackedModels.step``, each drawing its minibatches from the keyed batch source. The timed steps are split
into alternating blocks (solo, stacked, stacked, solo, ...) so that other work on the machine slows both
alike; the load average is printed with each row. MNIST recipes read ``--data-dir`` / $AVB_ZOO_DATA, else
the subset committed under tests/data (the speed does not depend on which).

    python benchmarks/train_stacked.py [--recipe mnist-avb-ac] [--ks 1,4,8] [--steps 24] [--device cpu|cuda]
                                        [--threads N] [--blocks B]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.device import resolve_device
from avb_zoo.errors import DataError
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.stacked import StackedModels
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model

SUBSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist-subset"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _source(recipe, data_dir: str | None):
    try:
        return make_batch_source(recipe.train.data, data_dir, None, recipe.train.binarize)
    except DataError:
        return make_batch_source(recipe.train.data, SUBSET, None, recipe.train.binarize)


def _row(recipe, settings, source, k: int, steps: int, device: torch.device, warmup: int, blocks: int) -> dict:
    """Time K solo runs and one stacked run of K models over the same steps, in alternating blocks."""
    batch_size = settings.batch_size
    seeds = list(range(k))
    solo = [init_model(recipe, s).to(device).train() for s in seeds]
    solo_opts = [make_optimizers(m, settings) for m in solo]
    models = [init_model(recipe, s).to(device).train() for s in seeds]
    stack = StackedModels(models, [make_optimizers(m, settings) for m in models], seeds, settings)

    def run_solo(first: int, last: int) -> None:
        for m, opts, s in zip(solo, solo_opts, seeds, strict=True):
            for step in range(first, last):
                train_step(m, opts, source.batch(s, step, batch_size).to(device), s, step, settings)

    def run_stacked(first: int, last: int) -> None:
        for step in range(first, last):
            stack.step(torch.stack([source.batch(s, step, batch_size) for s in seeds]).to(device), step)

    run_solo(0, warmup)
    run_stacked(0, warmup)
    _sync(device)
    seconds = {"solo": 0.0, "stacked": 0.0}
    load_before = os.getloadavg()[0]
    edges = [warmup + round(i * steps / blocks) for i in range(blocks + 1)]
    for b in range(blocks):
        order = [("solo", run_solo), ("stacked", run_stacked)]
        for name, run in order if b % 2 == 0 else reversed(order):
            started = time.perf_counter()
            run(edges[b], edges[b + 1])
            _sync(device)
            seconds[name] += time.perf_counter() - started
    examples = k * steps * batch_size
    return {
        "K": k,
        "solo examples/s": examples / seconds["solo"],
        "stacked examples/s": examples / seconds["stacked"],
        "speed-up": seconds["solo"] / seconds["stacked"],
        "load": (load_before, os.getloadavg()[0]),
    }


def measure(
    recipe_id: str,
    ks: list[int],
    steps: int,
    device: str | torch.device = "cpu",
    batch_size: int = 64,
    warmup: int = 2,
    blocks: int | None = None,
    data_dir: str | None = None,
) -> list[dict]:
    """One row per K: summed examples/s of K solo runs and of one stacked run, ``steps`` timed steps each,
    alternating in ``blocks`` blocks (default: one step each, the finest interleaving). Keys: K, solo
    examples/s, stacked examples/s, speed-up, load (the 1-minute load average at start and end)."""
    device = torch.device(device)
    recipe = find_recipe(recipe_id)
    settings = replace(recipe.train, batch_size=batch_size)
    source = _source(recipe, data_dir)
    return [_row(recipe, settings, source, k, steps, device, warmup, blocks or steps) for k in ks]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist-avb-ac-v1")
    parser.add_argument("--ks", default="1,4,8", help="comma-separated numbers of models")
    parser.add_argument("--steps", type=int, default=24, help="timed steps per side (after warm-up)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument(
        "--blocks", type=int, default=None, help="alternating solo/stacked blocks (default: one per step)"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data-dir", default=os.environ.get("AVB_ZOO_DATA"))
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's own)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(
        f"{args.recipe}, batch {args.batch_size}, {args.steps} timed steps per side after {args.warmup} warm-up, "
        f"{args.blocks or args.steps} alternating blocks; device {device} ({name}), torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}"
    )
    ks = [int(k) for k in args.ks.split(",")]
    blocks = args.blocks or args.steps
    rows = measure(args.recipe, ks, args.steps, device, args.batch_size, args.warmup, blocks, args.data_dir)
    print(f"{'K':>3} {'K solo runs ex/s':>17} {'stacked ex/s':>13} {'speed-up':>9}  load avg (1 min, start->end)")
    for r in rows:
        before, after = r["load"]
        print(
            f"{r['K']:>3} {r['solo examples/s']:>17.1f} {r['stacked examples/s']:>13.1f} {r['speed-up']:>8.2f}x"
            f"  {before:.2f} -> {after:.2f}"
        )


if __name__ == "__main__":
    main()
