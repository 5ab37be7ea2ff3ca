"""AIS throughput: (examples x chains x leapfrog steps) per second, on the CPU and on CUDA when present.

    python benchmarks/ais_throughput.py [--steps 20] [--chains 5] [--batch 4 128] [--threads N]

The models are the catalogue's toy and MNIST recipes with fresh weights (speed does not depend on
training); the inputs are random binary images. Each row is timed after one warm-up run on the same shapes.
"""

from __future__ import annotations

import argparse
import time

import torch

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.errors import RecipeNotFound
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.metrics import ais_log_likelihood
from avb_zoo.modelling.model import AVBModel

RECIPES = ("toy-avb", "mnist-avb-ac-v1", "mnist-vae-v1")


def models() -> list[tuple[str, AVBModel]]:
    out = []
    for name in RECIPES:
        try:
            recipe = find_recipe(name)
        except RecipeNotFound:
            continue
        torch.manual_seed(0)
        out.append((recipe.id, AVBModel(recipe.model).eval()))
    return out


def time_ais(model: AVBModel, batch: int, settings: AISSettings, device: torch.device) -> float:
    """Seconds for one AIS run on ``batch`` examples (after a warm-up run)."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, model.x_dim, generator=g) < 0.3).float().to(device)
    model = model.to(device)
    ais_log_likelihood(model, x, list(range(batch)), AISSettings(steps=3, chains=settings.chains), 0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    ais_log_likelihood(model, x, list(range(batch)), settings, 0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="AIS distributions per run")
    parser.add_argument("--chains", type=int, default=5)
    parser.add_argument("--leapfrog", type=int, default=10)
    parser.add_argument("--batch", type=int, nargs="+", default=[4, 128], help="examples per run")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    settings = AISSettings(steps=args.steps, chains=args.chains, leapfrog_steps=args.leapfrog).validate()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, {args.steps} AIS steps")
    for device in devices:
        if device.type == "cuda":
            print(f"cuda: {torch.cuda.get_device_name()}")
    header = f"{'device':<8}{'model':<22}{'examples':>9}{'chains':>8}{'leapfrog':>9}{'seconds':>10}{'ex*ch*lf/s':>14}"
    print(header)
    print("-" * len(header))
    for device in devices:
        for name, model in models():
            for batch in args.batch:
                seconds = time_ais(model, batch, settings, device)
                work = batch * settings.chains * settings.leapfrog_steps * (settings.steps - 1)
                print(
                    f"{device.type:<8}{name:<22}{batch:>9}{settings.chains:>8}{settings.leapfrog_steps:>9}"
                    f"{seconds:>10.2f}{work / seconds:>14,.0f}"
                )


if __name__ == "__main__":
    main()
