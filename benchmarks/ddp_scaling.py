"""Data-parallel scaling of ``avb-zoo train --nproc P``: examples per second on 1 and 2 CPU ranks (and 1..G GPUs).

    python benchmarks/ddp_scaling.py [--recipes toy-avb,mnist-avb-ac] [--steps SHORT,LONG] [--repeats 2]
                                     [--data-dir DIR] [--batch-size B] [--json out.json]

Every figure comes from the real command in a subprocess (``python -m avb_zoo.cli train ... --quiet --json``,
torchrun's agent with gloo when P > 1), so start-up, rendezvous and teardown are paid as a user pays them,
but only the training loop is timed. The global batch stays the recipe's (or ``--batch-size``), split across
ranks: this is strong scaling, and a rank's share of the work shrinks as P grows.

Timing. The JSON's ``seconds`` covers steps 1..S of the loop plus the final checkpoint, which the trainer
always writes (``--checkpoint-every`` is set past S, so there is no other). Each configuration runs twice,
SHORT and LONG steps with the same seed, and the rate is (LONG - SHORT) x batch / (t_LONG - t_SHORT): the
first steps' one-off costs (allocator growth, DDP's first-iteration bucket set-up, gloo's first collectives)
and the final checkpoint appear in both runs and cancel, leaving the steady-state rate. The configurations
are run ``--repeats`` times (default 2), interleaved, and the median rate is kept; the whole default run takes
about two minutes on an idle 2-core CPU.

CPU rows, per recipe: 1 process with torch's default threads (what a user gets without DDP, the reference of
the speed-up column); 1 process with cpus/2 threads; 2 ranks with cpus/2 threads each (OMP_NUM_THREADS, which
torch reads at start-up; the launcher would pick the same). The efficiency of P ranks is
throughput(P) / (P x throughput(1 process, same threads per process)): 1.0 means perfect scaling at equal
threads per process, and it says nothing about whether the machine had more cores to give. Threads/rank is
what ``torch.get_num_threads()`` reports in a child started with that environment. With CUDA GPUs (G > 0),
1..G ranks run with ``--device cuda`` (one GPU each), efficiency against 1 GPU; otherwise those rows are
reported as not run.

Other work on the machine distorts everything here (a process using every core slows down many times over
when anything else wants one), so the load average is printed before and after, and each row shows "other
CPUs": the whole machine's busy CPU time during the row's runs, less the CPU time of the runs themselves, per
second of wall time (from /proc/stat and the children's rusage; Linux only).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import find_recipe, load_catalogue
from avb_zoo.errors import AVBZooError
from avb_zoo.training.launch import threads_per_process

SUBSET = Path(__file__).resolve().parent.parent / "tests" / "data" / "mnist-subset"
DEFAULT_RECIPES = "toy-avb,mnist-avb-ac-v1"
# (SHORT, LONG) steps: LONG - SHORT steps of difference take a few seconds per configuration on a 2-core CPU
DEFAULT_STEPS = {"toy-avb": (20, 120), "mnist-avb-ac-v1": (5, 25)}
FALLBACK_STEPS = (5, 25)
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


@dataclass
class Config:
    """One row: ``ranks`` processes on ``device``, each with ``threads`` OMP threads (None: torch's default)."""

    recipe: str
    ranks: int
    device: str
    threads: int | None
    role: str  # "full" (the speed-up reference), "ref" (the efficiency reference), "ddp"
    rates: list[float] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    error: str | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
        if self.threads is not None:
            env["OMP_NUM_THREADS"] = str(self.threads)
        return env

    @property
    def rate(self) -> float | None:
        return statistics.median(self.rates) if self.rates else None


def child_threads(env: dict[str, str]) -> int:
    """``torch.get_num_threads()`` in a fresh process with this environment: what each rank will use."""
    code = "import torch; print(torch.get_num_threads())"
    return int(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True).stdout)


def cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole machine, CPU seconds of this process's finished children), or None off
    Linux: their difference over a run is the CPU time other work took from it."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return busy / os.sysconf("SC_CLK_TCK"), children.ru_utime + children.ru_stime


def train_once(cfg: Config, steps: int, out: Path, args: argparse.Namespace, data_dir: str | None) -> dict:
    """One ``avb-zoo train`` subprocess; its JSON summary. One retry when the command fails."""
    cmd = [sys.executable, "-m", "avb_zoo.cli", "train", cfg.recipe, "--max-steps", str(steps), "--seed", "0"]
    cmd += ["--checkpoint-every", str(10**9), "--device", cfg.device, "--quiet", "--json"]
    if cfg.ranks > 1:
        cmd += ["--nproc", str(cfg.ranks)]
    if args.batch_size is not None:
        cmd += ["--batch-size", str(args.batch_size)]
    if data_dir is not None:
        cmd += ["--data-dir", data_dir]
    for attempt in (1, 2):
        run_dir = out / f"{cfg.recipe}-{cfg.device}-p{cfg.ranks}-t{cfg.threads}-s{steps}-{time.monotonic_ns()}"
        cpu_before, wall_before = cpu_seconds(), time.perf_counter()
        proc = subprocess.run([*cmd, "--out", str(run_dir)], env=cfg.env(), capture_output=True, text=True)
        cpu_after, wall = cpu_seconds(), time.perf_counter() - wall_before
        others = None
        if cpu_before is not None and cpu_after is not None:
            others = max(0.0, (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])) / wall
        if proc.returncode == 0:
            text = proc.stdout[proc.stdout.index("{") :]
            summary = json.JSONDecoder().raw_decode(text)[0]
            if summary["processes"] != cfg.ranks or summary["steps_run"] != steps:
                raise RuntimeError(f"asked {cfg.ranks} ranks, {steps} steps; the run reports {summary}")
            return {"steps": steps, "seconds": summary["seconds"], "attempts": attempt, "other_cpus": others}
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        print(
            f"note: {cfg.recipe} {cfg.ranks} rank(s), {steps} steps: attempt {attempt} exited {proc.returncode}: {last}"
        )
    raise RuntimeError(f"exit {proc.returncode} twice: {last}")


def mnist_data(data_dir: str) -> str | None:
    """``data_dir`` when its training split loads, else None (the mnist recipes are then skipped)."""
    from avb_zoo.data.mnist import load_mnist

    try:
        load_mnist(data_dir, "train")
    except AVBZooError as err:
        print(f"note: MNIST recipes skipped: {data_dir} does not load ({err})")
        return None
    return data_dir


def plan(recipe: str, batch: int, gpus: int) -> list[Config]:
    half = threads_per_process(2)
    configs = [
        Config(recipe, 1, "cpu", None, "full"),
        Config(recipe, 1, "cpu", half, "ref"),
        Config(recipe, 2, "cpu", half, "ddp"),
    ]
    for ranks in range(1, gpus + 1):
        if batch % ranks:
            print(f"note: {recipe} on {ranks} GPUs skipped: the global batch {batch} does not split {ranks} ways")
            continue
        threads = None if ranks == 1 else threads_per_process(ranks)
        configs.append(Config(recipe, ranks, "cuda", threads, "ref" if ranks == 1 else "ddp"))
    return configs


def table(configs: list[Config], threads_of: dict[int | None, int]) -> list[dict]:
    """Rows with speed-up (against 1 process, default threads, same device) and efficiency (see the docstring)."""
    rows = []
    for cfg in configs:
        same = [c for c in configs if c.recipe == cfg.recipe and c.device == cfg.device]
        full = next((c.rate for c in same if c.role == ("full" if cfg.device == "cpu" else "ref")), None)
        ref = next((c.rate for c in same if c.role == "ref"), None)
        rate = cfg.rate
        rows.append(
            {
                "recipe": cfg.recipe,
                "ranks": cfg.ranks,
                "threads_per_rank": threads_of.get(cfg.threads),
                "device": cfg.device,
                "examples_per_second": rate,
                "speed_up": rate / full if rate and full else None,
                "efficiency": rate / (cfg.ranks * ref) if rate and ref and cfg.role == "ddp" else None,
                "other_cpus": max((r["other_cpus"] for r in cfg.runs if r["other_cpus"] is not None), default=None),
                "role": cfg.role,
                "runs": cfg.runs,
                "error": cfg.error,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default=DEFAULT_RECIPES, help=f"comma-separated ids (default: {DEFAULT_RECIPES})")
    parser.add_argument("--steps", default=None, help="SHORT,LONG steps for every recipe (default: per recipe)")
    parser.add_argument("--repeats", type=int, default=2, help="interleaved repeats; the median rate is kept")
    parser.add_argument("--batch-size", type=int, default=None, help="global batch (default: the recipe's)")
    parser.add_argument("--data-dir", default=str(SUBSET), help="MNIST folder (default: the subset in tests/data)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    catalogue = load_catalogue()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    load_before = os.getloadavg()
    first = cpu_seconds()
    time.sleep(1.0)
    last = cpu_seconds()
    busy_before = None if first is None or last is None else last[0] - first[0]
    print(
        f"{platform.processor() or platform.machine()}, {cpus} cpus, torch {torch.__version__}, {gpus} CUDA GPU(s); "
        f"load average before: {' '.join(f'{x:.2f}' for x in load_before)}; "
        f"busy CPUs over the last second: {'-' if busy_before is None else f'{busy_before:.2f}'}"
    )
    if busy_before is not None and busy_before > 0.1:
        print("warning: the machine is busy; rates below are lower and noisier than on an idle machine")

    mnist_dir: str | None = None
    configs: list[Config] = []
    steps_of: dict[str, tuple[int, int]] = {}
    data_of: dict[str, str | None] = {}
    for name in args.recipes.split(","):
        recipe = find_recipe(name.strip(), catalogue)
        short_id = recipe.id.rsplit("-v", 1)[0]
        if recipe.train.data == "mnist":
            mnist_dir = mnist_dir or mnist_data(args.data_dir)
            if mnist_dir is None:
                continue
        data_of[recipe.id] = mnist_dir if recipe.train.data == "mnist" else None
        if args.steps:
            short, long = (int(s) for s in args.steps.split(","))
        else:
            short, long = DEFAULT_STEPS.get(short_id, FALLBACK_STEPS)
        if not 0 < short < long:
            parser.error(f"--steps needs 0 < SHORT < LONG, got {short},{long}")
        steps_of[recipe.id] = (short, long)
        configs += plan(recipe.id, args.batch_size or recipe.train.batch_size, gpus)
    if not gpus:
        print("note: no CUDA GPU here: the GPU rows (1..G ranks, --device cuda) were not run")
    threads_of = {t: child_threads(Config("", 1, "cpu", t, "").env()) for t in {c.threads for c in configs}}

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ddp-scaling-") as tmp:
        for _ in range(args.repeats):
            for cfg in configs:
                if cfg.error:
                    continue
                short, long = steps_of[cfg.recipe]
                try:
                    a = train_once(cfg, short, Path(tmp), args, data_of[cfg.recipe])
                    b = train_once(cfg, long, Path(tmp), args, data_of[cfg.recipe])
                except RuntimeError as err:
                    cfg.error = str(err)
                    print(f"note: {cfg.recipe} {cfg.ranks} rank(s) on {cfg.device} failed: {err}")
                    continue
                batch = args.batch_size or find_recipe(cfg.recipe, catalogue).train.batch_size
                cfg.runs += [a, b]
                if b["seconds"] > a["seconds"]:
                    cfg.rates.append((long - short) * batch / (b["seconds"] - a["seconds"]))
                else:  # noise larger than the LONG - SHORT steps: no rate from this repeat
                    print(f"note: {cfg.recipe} {cfg.ranks} rank(s): {long} steps took no longer than {short}")
    elapsed = time.perf_counter() - started
    load_after = os.getloadavg()

    rows = table(configs, threads_of)
    steps_text = ", ".join(f"{r} {s}->{t}" for r, (s, t) in steps_of.items())
    print(f"steps (SHORT->LONG, differenced): {steps_text}; repeats {args.repeats}; {elapsed:.0f} s in all")
    header = f"{'recipe':18} {'ranks':>5} {'threads/rank':>12} {'device':>6} {'examples/s':>11} {'speed-up':>9}"
    header += f" {'effic.':>7} {'other CPUs':>10}"
    print(header)
    print("-" * len(header))
    for r in rows:
        rate = "failed" if r["error"] else f"{r['examples_per_second']:.0f}" if r["examples_per_second"] else "-"
        speed = f"{r['speed_up']:.2f}x" if r["speed_up"] else "-"
        eff = f"{r['efficiency']:.2f}" if r["efficiency"] else ("ref" if r["role"] == "ref" else "-")
        others = "-" if r["other_cpus"] is None else f"{r['other_cpus']:.2f}"
        print(
            f"{r['recipe']:18} {r['ranks']:>5} {r['threads_per_rank']!s:>12} {r['device']:>6} {rate:>11} "
            f"{speed:>9} {eff:>7} {others:>10}"
        )
    print(
        "speed-up: against 1 process with default threads on the same device; efficiency: against P x (1 process "
        "with the same threads per process)"
    )
    print(
        "other CPUs: the most CPUs other work on the machine kept busy, on average, during one of the row's runs "
        "(whole-machine busy time less this benchmark's own)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    if any(r["other_cpus"] is not None and r["other_cpus"] > 0.1 for r in rows):
        print("warning: other work ran during some rows (other CPUs > 0.1); their rates are not to be trusted")
    if args.json:
        info = {
            "cpus": cpus,
            "gpus": gpus,
            "torch": torch.__version__,
            "load_before": load_before,
            "busy_cpus_before": busy_before,
            "load_after": load_after,
            "steps": steps_of,
            "repeats": args.repeats,
            "seconds": elapsed,
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(info, indent=2) + "\n")


if __name__ == "__main__":
    main()
