"""Training steps/s by intra-op threads (1, 2, ..., automatic), on a quiet machine and beside busy processes.

    python benchmarks/threads_load.py [--recipes toy-avb mnist-avb-ac-v1] [--busy 0 2] [--seconds 20]
                                      [--rounds 2] [--data-dir DIR]

Every cell is a fresh process running the real trainer (``avb_zoo.train``, eager engine, float32) with
``threads=N`` or, for "auto", no thread setting at all (and no thread variable in its environment), so the
automatic choice is made exactly as a user's run makes it. A cell trains for ``--seconds`` after a warm-up
of 20 steps and reports steps/s over the steps after the warm-up. "busy K" starts K processes that spin on
a core (``python -c "while True: pass"``) three seconds before the cells of that condition and stops them
after. Cells run in rounds, the order of the thread settings reversed every round, and the table shows the
median over rounds. The last column is auto's steps/s against the best fixed count's in the same condition.
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

CELL = r"""
import json, sys, time
from avb_zoo.training.trainer import train
recipe, out, seconds, threads, data_dir = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
marks = {}
def on_step(step, result):
    now = time.perf_counter()
    if step == 20:
        marks["start"] = now
    marks["last"], marks["steps"] = now, step
    if "start" in marks and now - marks["start"] >= seconds:
        raise KeyboardInterrupt
from avb_zoo.errors import TrainingInterrupted
try:
    train(recipe, out, threads=None if threads == "auto" else int(threads), progress=False,
          data_dir=data_dir or None, on_step=on_step, checkpoint_every=10**9)
except TrainingInterrupted:  # on_step stops the run once the cell has its seconds
    pass
import torch
print(json.dumps({"steps_per_s": (marks["steps"] - 20) / (marks["last"] - marks["start"]),
                  "threads": torch.get_num_threads()}))
"""

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def cell(recipe: str, threads: str, seconds: float, data_dir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [sys.executable, "-c", CELL, recipe, str(Path(tmp) / "run"), str(seconds), threads, data_dir],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"cell {recipe} threads={threads} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1])


def spinners(count: int) -> list[subprocess.Popen]:
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    time.sleep(3.0 if count else 0.0)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["toy-avb", "mnist-avb-ac-v1"])
    parser.add_argument("--busy", nargs="+", type=int, default=[0, 2], help="spinning processes per condition")
    parser.add_argument("--threads", nargs="+", default=None, help="fixed counts (default: 1 .. CPUs)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default=os.environ.get("AVB_ZOO_DATA", ""))
    args = parser.parse_args()
    fixed = args.threads or [str(n) for n in range(1, (os.cpu_count() or 1) + 1)]
    settings = [*fixed, "auto"]
    print(
        f"{os.cpu_count()} CPUs; {args.seconds:.0f} s per cell after 20 warm-up steps; median of {args.rounds} rounds; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    header = ["recipe", "busy processes", *[f"{t} thread(s)" for t in fixed], "auto (threads chosen)", "best / auto"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for recipe in args.recipes:
        for busy in args.busy:
            procs = spinners(busy)
            try:
                results: dict[str, list[dict]] = {s: [] for s in settings}
                for round_ in range(args.rounds):
                    for s in settings if round_ % 2 == 0 else list(reversed(settings)):
                        results[s].append(cell(recipe, s, args.seconds, args.data_dir))
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
            rate = {s: statistics.median(r["steps_per_s"] for r in results[s]) for s in settings}
            chosen = sorted({r["threads"] for r in results["auto"]})
            best = max(rate[s] for s in fixed)
            row = [recipe, str(busy), *[f"{rate[s]:.1f}" for s in fixed]]
            row += [f"{rate['auto']:.1f} ({', '.join(map(str, chosen))})", f"{best / rate['auto']:.2f}"]
            print("| " + " | ".join(row) + " |", flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
