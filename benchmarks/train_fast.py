"""Training throughput of the engines (eager, compiled, graphs) on one recipe, measured in alternating blocks.

    python benchmarks/train_fast.py --recipe mnist-avb-ac-v1 --device cpu
    python benchmarks/train_fast.py --recipe mnist-avb-ac-v2 --device cuda --rounds 3

Every engine gets its own model and optimisers, is warmed up (compiled, captured) first, and then the
engines run in turn, ``--block`` steps each, for ``--rounds`` rounds, so a change in machine load touches all
of them alike; a row gives the median over rounds. On a GPU the table also gives the step's floating-point
operations (counted by torch's FlopCounterMode on the eager step), the achieved TFLOP/s, and a bf16 matrix
product's TFLOP/s measured in the same run as the ceiling to compare with. Last, K = 1/4/8 models trained as
one stacked model against K solo runs (benchmarks/train_stacked.py), the two alternating step by step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.distributed import World
from avb_zoo.training.batches import ImageBatches, make_batch_source
from avb_zoo.training.engines import Engine, make_engine
from avb_zoo.training.players import make_players
from avb_zoo.training.step import make_optimizers
from avb_zoo.training.trainer import init_model

ENGINE_ROWS = (("eager", "host"), ("eager", "device"), ("compiled", "device"), ("graphs", "device"))


@dataclass
class Row:
    engine: str  # requested
    noise: str
    ran: str = ""  # the engine that ran (after fall-backs)
    rates: list[float] = field(default_factory=list)  # steps/s per block
    warmup_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def steps_per_second(self) -> float:
        return statistics.median(self.rates) if self.rates else float("nan")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def batch_source(recipe_id: str, data_dir: str | None):
    """The recipe's data, or random images of MNIST's shape where the data are not at hand (speed only)."""
    recipe = find_recipe(recipe_id)
    try:
        return make_batch_source(recipe.train.data, data_dir)
    except Exception:  # noqa: BLE001 - the timing does not depend on the pixels
        gen = torch.Generator().manual_seed(0)
        return ImageBatches(torch.randint(0, 256, (60000, recipe.model["x_dim"]), dtype=torch.uint8, generator=gen))


def build(recipe_id: str, engine: str, noise: str, device: torch.device, batch_size: int | None, source) -> Engine:
    recipe = find_recipe(recipe_id)
    settings = recipe.train if batch_size is None else replace(recipe.train, batch_size=batch_size)
    model = init_model(recipe, seed=0).to(device).train()
    optimizers = make_optimizers(model, settings)
    world = World()
    return make_engine(engine, noise, model, optimizers, settings, source, 0, 0, make_players(model, world), world)


def step_flops(recipe_id: str, device: torch.device, batch_size: int | None, source) -> float | None:
    """Floating-point operations of one training step (torch's count: 2 per multiply-add), or None."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        runner = build(recipe_id, "eager", "device", device, batch_size, source)
        runner.run(0)
        with FlopCounterMode(display=False) as counter:
            runner.run(1)
        return float(counter.get_total_flops())
    except Exception:  # noqa: BLE001 - the count is a diagnostic
        return None


def bf16_matmul_tflops(device: torch.device, n: int = 8192, repeats: int = 20) -> float | None:
    """TFLOP/s of an n x n bf16 matrix product on random data (the GPU's practical ceiling)."""
    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize(device)
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1000) / 1e12


def measure(
    recipe_id: str,
    device: torch.device,
    rows: tuple[tuple[str, str], ...] = ENGINE_ROWS,
    block: int = 50,
    rounds: int = 3,
    warmup: int = 10,
    batch_size: int | None = None,
    data_dir: str | None = None,
    log=print,
) -> list[Row]:
    """Steps/s of each (engine, noise) row, median over ``rounds`` alternating blocks of ``block`` steps."""
    source = batch_source(recipe_id, data_dir)
    results = [Row(engine, noise) for engine, noise in rows]
    runners: list[Engine | None] = []
    steps = []
    for row in results:
        t0 = time.perf_counter()
        try:
            runner = build(recipe_id, row.engine, row.noise, device, batch_size, source)
            for s in range(warmup):
                runner.run(s)
            runner.result()
            synchronize(device)
        except Exception as err:  # noqa: BLE001 - a row that cannot run is reported, the others go on
            row.error = f"{type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''}"
            runners.append(None)
            steps.append(0)
            log(f"  {row.engine}/{row.noise}: failed ({row.error})")
            continue
        row.warmup_seconds = time.perf_counter() - t0
        row.ran, row.notes = runner.name, list(runner.notes)
        runners.append(runner)
        steps.append(warmup)
        log(f"  {row.engine}/{row.noise}: ready as {row.ran} after {row.warmup_seconds:.1f} s")
    for _ in range(rounds):
        for i, (row, runner) in enumerate(zip(results, runners, strict=True)):
            if runner is None:
                continue
            synchronize(device)
            t0 = time.perf_counter()
            for _ in range(block):
                runner.run(steps[i])
                steps[i] += 1
            runner.result()  # reads the losses: waits for the device
            row.rates.append(block / (time.perf_counter() - t0))
    return results


def table(rows: list[Row], batch: int, flops: float | None, ceiling: float | None) -> str:
    base = next((r.steps_per_second for r in rows if r.engine == "eager" and r.noise == "host" and r.rates), None)
    lines = [
        "| engine | noise | ran as | steps/s | examples/s | x eager | TFLOP/s | warm-up s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if r.error:
            lines.append(f"| {r.engine} | {r.noise} | failed: {r.error} | | | | | |")
            continue
        sps = r.steps_per_second
        ratio = f"{sps / base:.2f}" if base else "-"
        tflops = f"{flops * sps / 1e12:.2f}" if flops else "-"
        lines.append(
            f"| {r.engine} | {r.noise} | {r.ran} | {sps:.1f} | {sps * batch:.0f} | {ratio} | {tflops} | "
            f"{r.warmup_seconds:.1f} |"
        )
    if flops:
        lines.append(f"\none step: {flops / 1e9:.2f} GFLOP (FlopCounterMode, eager step)")
    if ceiling:
        lines.append(f"bf16 matmul 8192^3 on this device: {ceiling:.0f} TFLOP/s")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="mnist-avb-ac-v1")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--block", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--stacked", default="1,4,8", help="numbers of stacked models to measure ('' for none)")
    parser.add_argument("--stacked-steps", type=int, default=16)
    args = parser.parse_args()
    device = torch.device(args.device)
    recipe = find_recipe(args.recipe)
    batch = args.batch_size or recipe.train.batch_size
    print(f"{recipe.id}, batch {batch}, device {device}, torch {torch.__version__}")
    rows = measure(
        recipe.id,
        device,
        block=args.block,
        rounds=args.rounds,
        warmup=args.warmup,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
    )
    source = batch_source(recipe.id, args.data_dir)
    flops = step_flops(recipe.id, device, args.batch_size, source)
    print(table(rows, batch, flops, bf16_matmul_tflops(device)))
    for r in rows:
        for note in r.notes:
            print(f"note ({r.engine}): {note}")
    if args.stacked:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from train_stacked import measure as measure_stacked

        print(f"\nstacked: K models in one process vs K solo runs, alternating step by step, batch {batch}")
        print("| K | K solo runs examples/s | stacked examples/s | speed-up | load (1 min, start -> end) |")
        print("|---|---|---|---|---|")
        ks = [int(k) for k in args.stacked.split(",")]
        for row in measure_stacked(recipe.id, ks, args.stacked_steps, device, batch, data_dir=args.data_dir):
            load = row["load"]
            print(
                f"| {row['K']} | {row['solo examples/s']:.0f} | {row['stacked examples/s']:.0f} | "
                f"{row['speed-up']:.2f} | {load[0]:.2f} -> {load[1]:.2f} |"
            )


if __name__ == "__main__":
    main()
