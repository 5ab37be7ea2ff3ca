"""Where a training step's time goes on a GPU: per-engine step times and the top kernels of the compiled step.

PYTHONPATH=. python3 benchmarks/gpu_profile.py --recipe mnist-avb-ac-v2 --data-dir .mnist
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_fast import batch_source, build  # noqa: E402


def timed(runner, start: int, steps: int) -> float:
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for s in range(start, start + steps):
        runner.run(s)
    runner.result()
    return (time.perf_counter() - t0) / steps * 1000


def kernel_table(runner, start: int, steps: int, rows: int = 25) -> str:
    """torch.profiler's top kernels (by device time) and top host calls over ``steps`` steps of ``runner``."""
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if torch.cuda.is_available() else [])
    with profile(activities=activities) as prof:
        for s in range(start, start + steps):
            runner.run(s)
        runner.result()
    averages = prof.key_averages()
    device_sort = "cuda_time_total" if torch.cuda.is_available() else "cpu_time_total"
    return (
        f"{steps} steps profiled\n"
        + averages.table(sort_by=device_sort, row_limit=rows, max_name_column_width=70)
        + "\n"
        + averages.table(sort_by="cpu_time_total", row_limit=12, max_name_column_width=70)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipe", default="mnist-avb-ac-v2")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    args = parser.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    device = torch.device("cuda")
    source = batch_source(args.recipe, args.data_dir)
    rows = []
    for engine in ("compiled", "graphs"):
        t0 = time.perf_counter()
        runner = build(args.recipe, engine, "device", device, args.batch_size, source)
        for s in range(6):
            runner.run(s)
        runner.result()
        ready = time.perf_counter() - t0
        ms = timed(runner, 6, 300)
        rows.append((engine, runner.name, ready, ms, runner.notes))
        print(f"{engine}: ran as {runner.name}, ready in {ready:.1f} s, {ms:.3f} ms/step {runner.notes}", flush=True)
        if engine == "compiled":
            print(kernel_table(runner, 306, 10))
    print("| engine | ran as | ready s | ms/step | steps/s |")
    print("|---|---|---|---|---|")
    for engine, ran, ready, ms, _ in rows:
        print(f"| {engine} | {ran} | {ready:.1f} | {ms:.3f} | {1000 / ms:.0f} |")


if __name__ == "__main__":
    main()
