"""onnxruntime against torch eager for encode and sample, and the cold start of ``avb-zoo sample``.

    python benchmarks/runtime.py [--model DIR | --recipe mnist-avb-ac] [--threads N] [--rounds 5] [--json out.json]

One run measures, for batch 1 and batch 256: latency (median ms per call) and throughput (examples/s) of the
encoder graph (x, eps -> z) and the sampler graph (z -> pixel probabilities) on onnxruntime, through the
runtime's own sessions, and of the same torch modules in eager mode (``encoder(x, eps)``,
``sigmoid(decoder(z))``, no grad), with the ratio torch / onnxruntime (above 1: onnxruntime is faster).
Timings alternate between the two engines round by round, so a change in machine load hits both. Then the
cold start of ``avb-zoo sample DIR -n 64 --out grid.png``, from process start to exit (the grid is written
just before), and the peak resident memory of that process and of one process per engine at batch 256.
Without ``--model`` the recipe's architecture is exported with freshly initialised weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

BATCHES = (1, 256)
COLD_RUNS = 5

# child processes for peak memory: each prints its own high-water mark (VmHWM) at exit; the rusage of a child
# is no use here, since Linux counts the parent's pages at fork in it
HWM = "import atexit; atexit.register(lambda: print([l for l in open('/proc/self/status') if 'VmHWM' in l][0]))\n"
SAMPLE_CHILD = HWM + "import sys; from avb_zoo.cli import main; main(sys.argv[1:])"
ORT_CHILD = (
    HWM
    + """
import sys, numpy as np
from avb_zoo.runtime import Encoder, Sampler
e, s = Encoder(sys.argv[1]), Sampler(sys.argv[1])
x = np.random.default_rng(0).random((256, e.x_dim), dtype=np.float32)
for _ in range(5):
    e.encode(x, seed=0); s.sample(256, seed=0)
"""
)
TORCH_CHILD = (
    HWM
    + """
import sys, torch
from avb_zoo.modelling.factory import load
m = load(sys.argv[1])
with torch.no_grad():
    for _ in range(5):
        m.encode(torch.rand(256, m.x_dim)); m.sample(256)
"""
)


def timed(fn: Callable[[], object], seconds: float) -> float:
    """Median seconds per call of ``fn`` over about ``seconds`` of calls (after one warm-up call)."""
    fn()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < 5 or time.perf_counter() < deadline:
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def engines(encoder, sampler, model: torch.nn.Module, batch: int) -> dict[str, tuple[Callable, Callable]]:
    """For encode and sample: (onnxruntime call, torch eager call) on the same random inputs of this batch."""
    rng = np.random.default_rng(batch)
    x = rng.random((batch, model.x_dim), dtype=np.float32)
    eps = rng.standard_normal((batch, model.noise_dim), dtype=np.float32)
    z = rng.standard_normal((batch, model.latent_dim), dtype=np.float32)
    tx, teps, tz = torch.from_numpy(x), torch.from_numpy(eps), torch.from_numpy(z)
    return {
        "encode": (lambda: encoder.graph.run({"x": x, "eps": eps}), lambda: model.encoder(tx, teps)),
        "sample": (lambda: sampler.graph.run({"z": z}), lambda: torch.sigmoid(model.decoder(tz))),
    }


def compare(folder: Path, model: torch.nn.Module, threads: int | None, rounds: int, seconds: float) -> list[dict]:
    from avb_zoo.runtime import Encoder, Sampler

    encoder, sampler = Encoder(folder, threads=threads), Sampler(folder, threads=threads)
    rows = []
    for batch in BATCHES:
        for what, (ort_fn, torch_fn) in engines(encoder, sampler, model, batch).items():
            ort_times, torch_times = [], []
            for _ in range(rounds):
                ort_times.append(timed(ort_fn, seconds))
                torch_times.append(timed(torch_fn, seconds))
            ort_s, torch_s = statistics.median(ort_times), statistics.median(torch_times)
            rows.append(
                {
                    "what": what,
                    "batch": batch,
                    "ort_ms": 1e3 * ort_s,
                    "torch_ms": 1e3 * torch_s,
                    "ort_per_s": batch / ort_s,
                    "torch_per_s": batch / torch_s,
                    "ratio": torch_s / ort_s,
                }
            )
    return rows


def run_child(args: list[str]) -> tuple[float, str]:
    """(wall seconds, stdout) of a child process, which must succeed."""
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{args[:3]} failed: {done.stderr}")
    return wall, done.stdout


def peak_mb(args: list[str]) -> float:
    """Peak resident memory (MiB) of a child that prints its VmHWM line last."""
    line = run_child(args)[1].strip().splitlines()[-1]
    return int(line.split()[1]) / 1024  # VmHWM is in kB


def cold_start(folder: Path, work: Path) -> dict[str, object]:
    """Wall time of `avb-zoo sample DIR -n 64 --out grid.png`, process start to exit, and its peak memory."""
    exe = Path(sys.executable).with_name("avb-zoo")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "avb_zoo.cli"]
    walls = []
    for i in range(COLD_RUNS):
        grid = work / f"grid{i}.png"
        walls.append(run_child([*command, "sample", str(folder), "-n", "64", "--out", str(grid)])[0])
        if not grid.is_file():
            raise SystemExit(f"avb-zoo sample wrote no {grid}")
    args = ["sample", str(folder), "-n", "64", "--out", str(work / "grid.png")]
    peak = peak_mb([sys.executable, "-c", SAMPLE_CHILD, *args])
    return {"runs_s": walls, "median_s": statistics.median(walls), "peak_rss_mb": peak}


def build(args: argparse.Namespace, work: Path) -> tuple[torch.nn.Module, Path, str]:
    """The model measured, saved and exported (parity-checked) into ``work/model``."""
    from avb_zoo.export import export_model

    from avb_zoo.modelling.factory import load
    from avb_zoo.modelling.weights import save

    if args.model:
        model, source = load(args.model), str(args.model)
    else:
        from avb_zoo.catalogue.recipes import find_recipe
        from avb_zoo.training.trainer import init_model

        recipe = find_recipe(args.recipe)
        model, source = init_model(recipe, seed=0).eval(), f"{recipe.id} (initial weights)"
    folder = work / "model"
    save(model, folder)
    export_model(model, folder, model_id=source, seed=0)
    return model, folder, source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a trained model folder (default: the recipe's architecture)")
    parser.add_argument("--recipe", default="mnist-avb-ac-v1", help="catalogue recipe whose architecture is measured")
    parser.add_argument("--threads", type=int, default=None, help="threads for both engines (default: theirs)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per case")
    parser.add_argument("--seconds", type=float, default=0.3, help="time per engine per round")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    with tempfile.TemporaryDirectory(prefix="avb-zoo-bench-") as tmp:
        model, folder, source = build(args, Path(tmp))
        rows = compare(folder, model, args.threads, args.rounds, args.seconds)
        cold = cold_start(folder, folder.parent)
        memory = {
            "onnxruntime_mb": peak_mb([sys.executable, "-c", ORT_CHILD, str(folder)]),
            "torch_mb": peak_mb([sys.executable, "-c", TORCH_CHILD, str(folder)]),
        }
    from avb_zoo.runtime.ort import onnxruntime

    result = {
        "model": source,
        "threads": args.threads or "default",
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "load_average": os.getloadavg(),
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
        "compare": rows,
        "cold_start_sample": cold,
        "peak_memory_batch256": memory,
    }
    print(f"model: {source}; threads: {result['threads']}; load average {result['load_average'][0]:.1f}")
    print(f"{'':8}{'batch':>6}{'ort ms':>10}{'torch ms':>10}{'ort ex/s':>11}{'torch ex/s':>11}{'torch/ort':>10}")
    for r in rows:
        print(
            f"{r['what']:8}{r['batch']:>6}{r['ort_ms']:>10.3f}{r['torch_ms']:>10.3f}"
            f"{r['ort_per_s']:>11.0f}{r['torch_per_s']:>11.0f}{r['ratio']:>10.2f}"
        )
    runs = ", ".join(f"{s:.2f}" for s in cold["runs_s"])
    print(f"cold start `avb-zoo sample -n 64`: median {cold['median_s']:.2f} s ({runs})")
    print(f"peak memory: that process {cold['peak_rss_mb']:.0f} MiB; ", end="")
    print(f"at batch 256, onnxruntime {memory['onnxruntime_mb']:.0f} MiB, torch {memory['torch_mb']:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
