"""AIS against its roofline: the matrix products of an AIS run, timed alone, against the whole run.

    python benchmarks/ais_roofline.py [--recipes mnist-avb-ac-v1 ...] [--batch 128] [--chains 5] [--steps 20]
                                      [--leapfrog 10] [--threads N] [--rounds 5]

One AIS run (the project's ``run_ais`` on the model's decoder, step sizes fixed so that no pilot runs) is
recorded once: every matrix product it calls (mm, addmm, bmm, convolutions), with its shapes. The roofline
is this machine's float32 rate on exactly those products: the same calls, same shapes and layouts, replayed
back to back on random data of the same sizes. The ratio is (products alone) / (whole AIS run): the share
of the run's wall time that arithmetic on the products would need; 1.0 would mean everything else (the
activations, the likelihood, the leapfrog bookkeeping, Python) is free. AIS runs and replays alternate for
``--rounds`` rounds in one process, and the medians are compared, so both see the same machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import torch
from products import flops_of, materialise, record, replay

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.evaluation.ais import AISSettings, run_ais
from avb_zoo.evaluation.metrics import initial_distribution, model_log_likelihood
from avb_zoo.modelling.model import AVBModel


def ais_run(model: AVBModel, x: torch.Tensor, settings: AISSettings) -> Callable[[], None]:
    """One AIS run on ``x`` with fixed step sizes (no pilot), as a function to time."""
    indices = list(range(x.shape[0]))
    q0 = initial_distribution(model, x, 0)
    step_sizes = torch.full((x.shape[0], settings.steps - 1), 0.05)
    log_likelihood = model_log_likelihood(model, x)

    def run() -> None:
        with torch.no_grad():
            run_ais(log_likelihood, q0, settings, 0, indices, step_sizes=step_sizes)

    return run


def seconds(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(recipe_id: str, batch: int, settings: AISSettings, rounds: int) -> dict:
    torch.manual_seed(0)
    model = AVBModel(find_recipe(recipe_id).model).eval()
    x = (torch.rand(batch, model.x_dim, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    run = ais_run(model, x, settings)
    recorded = record(run)
    calls = materialise(recorded)
    flops = flops_of(recorded)
    run()  # warm-up of both sides
    replay(calls)
    ais_times, product_times = [], []
    for _ in range(rounds):
        ais_times.append(seconds(run))
        product_times.append(seconds(lambda: replay(calls)))
    ais_s, products_s = statistics.median(ais_times), statistics.median(product_times)
    return {
        "recipe": recipe_id,
        "rows": batch * settings.chains,
        "products": len(recorded),
        "gflop": flops / 1e9,
        "ais_s": ais_s,
        "products_s": products_s,
        "ais_gflops": flops / ais_s / 1e9,
        "roofline_gflops": flops / products_s / 1e9,
        "ratio": products_s / ais_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["mnist-avb-ac-v1", "mnist-vae-v1", "mnist-avb-ac-v2"])
    parser.add_argument("--batch", type=int, default=128, help="test images per AIS run")
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20, help="AIS distributions per run")
    parser.add_argument("--leapfrog", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    settings = AISSettings(steps=args.steps, chains=args.chains, leapfrog_steps=args.leapfrog)
    print(
        f"AIS roofline: {args.batch} images x {args.chains} chains, {args.steps} distributions x {args.leapfrog} "
        f"leapfrog steps, float32, torch {torch.__version__}, {torch.get_num_threads()} thread(s), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; medians of {args.rounds} alternating rounds"
    )
    header = ("recipe", "rows", "products", "GFLOP", "AIS s", "products s", "AIS GFLOP/s", "roofline GFLOP/s", "ratio")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for recipe_id in args.recipes:
        r = measure(recipe_id, args.batch, settings, args.rounds)
        print(
            f"| {r['recipe']} | {r['rows']} | {r['products']} | {r['gflop']:.1f} | {r['ais_s']:.3f} | "
            f"{r['products_s']:.3f} | {r['ais_gflops']:.1f} | {r['roofline_gflops']:.1f} | {r['ratio']:.2f} |"
        )
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
