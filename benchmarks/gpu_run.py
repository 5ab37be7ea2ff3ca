"""The prepared GPU run: every engine smoke-tested, the engines benchmarked, the flagship trained and evaluated.

    PYTHONPATH=. python3 benchmarks/gpu_run.py --out $OUT --data-dir .mnist        # one command on the GPU
    python benchmarks/gpu_run.py --out /tmp/gpu-dry --dry-run                       # the same stages, tiny, on a CPU

Stages, each under a share of one wall-clock budget (``--budget`` seconds for the whole script), each
falling back instead of failing (graphs -> compiled -> eager inside the engines; a stage that fails is
reported and the next one runs):

1. smoke: ``train`` of the flagship recipe for a few steps with every engine;
2. bench: steps/s of every engine in alternating blocks (benchmarks/train_fast.py), the step's FLOPs and a
   bf16 matrix product's TFLOP/s; stacked K = 1/4/8 when the stacked trainer is there;
3. flagship: the recipe trained with the fastest engine that ran, for the time left after reserving the
   evaluation's time (estimated from a timed short AIS run), checkpoints in a run folder outside the
   checkout;
4. eval: ``evaluate_folder`` on the GPU (AIS with the paper's protocol, full float32), metrics.json;
5. the VAE of the same decoder, trained and evaluated the same way when the budget still allows.

Everything that comes back goes to ``--out`` (at most 8 files): summary.json, the flagship's config.json,
model.safetensors and metrics.json (and the VAE's, prefixed), and the table printed last.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from train_fast import ENGINE_ROWS, batch_source, bf16_matmul_tflops, measure, step_flops  # noqa: E402

from avb_zoo.catalogue.recipes import find_recipe  # noqa: E402
from avb_zoo.evaluation.ais import AISSettings  # noqa: E402
from avb_zoo.evaluation.evaluate import EvalSettings, evaluate_folder  # noqa: E402
from avb_zoo.evaluation.metrics import ais_log_likelihood  # noqa: E402
from avb_zoo.training.trainer import init_model, train  # noqa: E402


class Clock:
    """Seconds since the script started, and what is left of the budget."""

    def __init__(self, budget: float) -> None:
        self.start, self.budget = time.perf_counter(), budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def left(self) -> float:
        return self.budget - self.elapsed()


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextmanager
def stage(summary: dict, name: str, clock: Clock) -> Iterator[dict]:
    """A stage's record in summary['stages'][name]: its seconds, and its error instead of a raise (the next
    stage runs)."""
    t0 = clock.elapsed()
    log(f"stage {name} (at {t0:.0f} s, {clock.left():.0f} s left)")
    record = summary["stages"][name] = {"status": "running"}
    try:
        yield record
        record["status"] = "ok"
    except Exception as err:  # noqa: BLE001 - reported; the next stage runs
        record["status"] = "failed"
        record["error"] = f"{type(err).__name__}: {err}"
        log(f"stage {name} failed: {record['error']}")
        traceback.print_exc(limit=6)
    finally:
        record["seconds"] = round(clock.elapsed() - t0, 1)


def estimate_eval_seconds(recipe_id: str, device: torch.device, ais: AISSettings, images: int, batch: int) -> float:
    """Wall time of the evaluation, from a timed AIS run of a few distributions at the real batch size."""
    model = init_model(find_recipe(recipe_id), seed=0).to(device).eval()
    x = (torch.rand(batch, model.x_dim, generator=torch.Generator().manual_seed(0)) < 0.2).float().to(device)
    short = replace(ais, steps=12)
    ais_log_likelihood(model, x[: min(batch, 8)], list(range(min(batch, 8))), replace(short, steps=3), 0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    ais_log_likelihood(model, x, list(range(batch)), short, 0)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    per_transition = (time.perf_counter() - t0) / (short.steps - 1)
    batches = -(-images // batch)
    return 1.2 * per_transition * (ais.steps - 1) * batches + 10.0  # +20% and the ELBO terms


def train_and_evaluate(
    args,
    summary: dict,
    clock: Clock,
    recipe_id: str,
    engine: str,
    key: str,
    out: Path,
    prefix: str,
    reserve_after: float,
) -> None:
    """Train ``recipe_id`` for the time the budget leaves, evaluate it, copy its files to ``out``."""
    device = torch.device(args.device)
    ais = AISSettings(steps=args.ais_steps, chains=args.ais_chains)
    eval_seconds, train_seconds = args.eval_seconds_fallback, 0.0
    with stage(summary, f"{key}-plan", clock) as record:
        try:
            eval_seconds = estimate_eval_seconds(recipe_id, device, ais, args.ais_images, args.eval_batch)
        except Exception as err:  # noqa: BLE001 - plan with the fallback; the evaluation stage reports its error
            record["estimate_error"] = f"{type(err).__name__}: {err}"[:300]
            log(f"{key}: could not time AIS ({record['estimate_error']}); assuming {eval_seconds:.0f} s")
        train_seconds = min(args.train_seconds, clock.left() - eval_seconds - reserve_after - 20.0)
        record.update(eval_seconds_estimate=round(eval_seconds, 1), train_seconds=round(train_seconds, 1))
        log(f"{key}: evaluation estimated at {eval_seconds:.0f} s; training for {train_seconds:.0f} s")
    if train_seconds < 10:
        summary["stages"][f"{key}-plan"]["error"] = "training skipped: not enough time left"
        return
    run_dir = Path(args.run_dir) / key
    if run_dir.exists():
        shutil.rmtree(run_dir)
    with stage(summary, f"{key}-train", clock) as record:
        result = train(
            recipe_id,
            run_dir,
            device=device,
            data_dir=args.data_dir,
            engine=engine,
            noise="device",  # the stream every fast engine shares, so a fall-back keeps the run's function
            seed=0,
            progress=False,
            batch_size=args.batch_size,
            max_steps=args.max_steps,
            max_seconds=train_seconds,
            checkpoint_every=args.checkpoint_every,
            report_every=args.report_every,
        )
        record.update(
            engine=result.engine,
            noise=result.noise,
            notes=result.engine_notes,
            steps=result.step,
            seconds=round(result.seconds, 1),
            steps_per_second=round(result.steps_run / max(result.seconds, 1e-9), 1),
            epochs=round(result.step * result.batch_size / 55000, 1),
            last=asdict(result.last) if result.last else None,
            history=[(s, round(r.primal, 5), round(r.adversary, 4), round(r.elbo, 3)) for s, r in result.history],
        )
        log(f"{key}: {result.step} steps in {result.seconds:.0f} s with {result.engine} ({result.noise} noise)")
    if not (run_dir / "model.safetensors").exists():
        return
    for name in ("config.json", "model.safetensors"):  # the last checkpoint, also after a divergence
        shutil.copy(run_dir / name, out / f"{prefix}{name}")
    with stage(summary, f"{key}-eval", clock) as record:
        if device.type == "cuda":  # evaluation in full float32 (training may use TF32 matrix units)
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        settings = EvalSettings(
            ais=ais,
            n_test=args.ais_images,
            batch_size=args.eval_batch,
            seed=0,
            device=args.device,
            data_dir=args.data_dir,
        )
        metrics, _ = evaluate_folder(run_dir, settings, write=True)
        shutil.copy(run_dir / "metrics.json", out / f"{prefix}metrics.json")
        record.update({k: metrics.get(k) for k in metrics if not isinstance(metrics.get(k), dict)})
        record["diagnostics"] = metrics.get("diagnostics")
        log(f"{key}: AIS log-likelihood {metrics.get('log_likelihood')}")
        if device.type == "cuda" and args.tf32_training:
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True


def final_table(summary: dict) -> str:
    lines = ["", "== gpu_run summary ==", f"device: {summary['device']}, torch {summary['torch']}"]
    lines.append("| stage | status | seconds | detail |")
    lines.append("|---|---|---|---|")
    for name, record in summary["stages"].items():
        detail = ""
        if name == "smoke":
            detail = "; ".join(
                f"{k}: {v.get('ran', '?')} {v.get('status', '')}" for k, v in record.get("engines", {}).items()
            )
        elif name.endswith("-train") and "steps" in record:
            detail = (
                f"{record['steps']} steps ({record['epochs']} epochs) in {record['seconds']} s, "
                f"{record['steps_per_second']} steps/s, engine {record['engine']}"
            )
        elif name.endswith("-eval") and "log_likelihood" in record:
            diag = record.get("diagnostics") or {}
            detail = (
                f"AIS {record['log_likelihood']:.2f} (MC se {record.get('log_likelihood_mc_se')}, "
                f"spread se {record.get('log_likelihood_spread_se')}); rec {record.get('reconstruction_error')}; "
                f"elbo {record.get('elbo', record.get('elbo_estimate'))} ({record.get('elbo_kind')}); "
                f"AIS {diag.get('ais_seconds')} s"
            )
        elif name.endswith("-plan"):
            detail = f"eval ~{record.get('eval_seconds_estimate')} s, train {record.get('train_seconds')} s"
        if record.get("error"):
            detail = record["error"][:200]
        lines.append(f"| {name} | {record.get('status')} | {record.get('seconds', '')} | {detail} |")
    if "bench_table" in summary:
        lines += ["", summary["bench_table"]]
    if "stacked_table" in summary:
        lines += ["", summary["stacked_table"]]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--run-dir", default=None, help="run folders (default: a temporary folder)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget", type=float, default=565.0, help="seconds for the whole script")
    parser.add_argument("--recipe", default="mnist-avb-ac-v2")
    parser.add_argument("--vae-recipe", default="mnist-vae-v2")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--train-seconds", type=float, default=330.0, help="most training time for the flagship")
    parser.add_argument("--vae-min-seconds", type=float, default=60.0, help="train the VAE only with this much left")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--report-every", type=int, default=2000)
    parser.add_argument("--ais-images", type=int, default=2048)
    parser.add_argument("--ais-steps", type=int, default=1000)
    parser.add_argument("--ais-chains", type=int, default=5)
    parser.add_argument("--eval-batch", type=int, default=2048)
    parser.add_argument("--eval-seconds-fallback", type=float, default=200.0, help="when AIS cannot be timed")
    parser.add_argument("--bench-block", type=int, default=200)
    parser.add_argument("--bench-rounds", type=int, default=3)
    parser.add_argument("--smoke-steps", type=int, default=20)
    parser.add_argument("--stacked-steps", type=int, default=30)
    parser.add_argument("--profile-steps", type=int, default=10)
    parser.add_argument("--no-tf32-training", dest="tf32_training", action="store_false")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU: every stage, end to end")
    args = parser.parse_args()
    if args.dry_run:
        args.device = "cpu"
        args.recipe, args.vae_recipe = "mnist-avb-ac-v1", "mnist-vae-v1"
        args.batch_size = args.batch_size or 8
        args.budget, args.train_seconds, args.vae_min_seconds = 1200.0, 15.0, 5.0
        args.ais_images, args.ais_steps, args.ais_chains, args.eval_batch = 4, 6, 2, 4
        args.bench_block, args.bench_rounds, args.smoke_steps, args.report_every = 2, 2, 2, 5
        args.stacked_steps, args.profile_steps = 2, 2
        args.checkpoint_every = args.checkpoint_every or 20
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    args.run_dir = args.run_dir or tempfile.mkdtemp(prefix="avb-zoo-gpu-run-")
    clock = Clock(args.budget)
    device = torch.device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    summary: dict = {
        "device": name,
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "args": vars(args),
        "stages": {},
    }
    if device.type == "cuda" and args.tf32_training:
        torch.backends.cuda.matmul.allow_tf32 = True  # training's matrix products on TF32 units
        torch.backends.cudnn.allow_tf32 = True
    log(f"gpu_run on {name} (torch {torch.__version__}), budget {args.budget:.0f} s, runs in {args.run_dir}")

    with stage(summary, "smoke", clock) as record:
        record["engines"] = {}
        for engine in ("eager", "compiled", "graphs"):
            t0 = time.perf_counter()
            entry = record["engines"][engine] = {}
            try:
                result = train(
                    args.recipe,
                    Path(args.run_dir) / f"smoke-{engine}",
                    device=device,
                    data_dir=args.data_dir,
                    engine=engine,
                    noise="host" if engine == "eager" else "device",
                    max_steps=args.smoke_steps,
                    batch_size=args.batch_size,
                    progress=False,
                    report_every=max(1, args.smoke_steps // 2),
                    checkpoint_every=args.smoke_steps,
                )
                entry.update(
                    ran=result.engine,
                    noise=result.noise,
                    notes=result.engine_notes,
                    status="ok",
                    primal=result.last.primal if result.last else None,
                )
            except Exception as err:  # noqa: BLE001 - reported; the other engines still run
                entry.update(status="failed", error=f"{type(err).__name__}: {err}"[:300])
            entry["seconds"] = round(time.perf_counter() - t0, 1)
            log(f"smoke {engine}: {entry}")

    rate: float | None = None
    best_engine = "eager"
    with stage(summary, "bench", clock) as record:
        batch = args.batch_size or find_recipe(args.recipe).train.batch_size
        rows = measure(
            args.recipe,
            device,
            ENGINE_ROWS,
            block=args.bench_block,
            rounds=args.bench_rounds,
            warmup=5,
            batch_size=args.batch_size,
            data_dir=args.data_dir,
            log=log,
        )
        flops = step_flops(args.recipe, device, args.batch_size, batch_source(args.recipe, args.data_dir))
        ceiling = bf16_matmul_tflops(device)
        from train_fast import table

        summary["bench_table"] = table(rows, batch, flops, ceiling)
        record["rows"] = [
            {
                "engine": r.engine,
                "noise": r.noise,
                "ran": r.ran,
                "steps_per_second": r.steps_per_second,
                "rates": r.rates,
                "warmup_seconds": r.warmup_seconds,
                "notes": r.notes,
                "error": r.error,
            }
            for r in rows
        ]
        record.update(step_flops=flops, bf16_tflops=ceiling)
        log("\n" + summary["bench_table"])
        ran = [r for r in rows if r.rates and r.noise == "device"]
        if ran:
            fastest = max(ran, key=lambda r: r.steps_per_second)
            best_engine, rate = fastest.engine, fastest.steps_per_second
            # the epoch time of the fastest engine: 55,000 images at the recipe's batch
            record["epoch_seconds"] = round(55000 / batch / rate, 2)

    if clock.left() > 330:
        with stage(summary, "profile", clock) as record:
            from gpu_profile import kernel_table
            from train_fast import build

            engine = "compiled"
            runner = build(
                args.recipe, engine, "device", device, args.batch_size, batch_source(args.recipe, args.data_dir)
            )
            for s in range(3):
                runner.run(s)
            text = kernel_table(runner, 3, args.profile_steps)
            (Path(args.run_dir) / "profile.txt").write_text(text)
            record["table"] = text[:6000]
            log(text)

    if clock.left() > 300:
        with stage(summary, "stacked", clock) as record:
            try:
                from train_stacked import measure as measure_stacked  # noqa: PLC0415
            except ImportError as err:
                raise RuntimeError(f"no stacked trainer here ({err})") from None
            batch = args.batch_size or find_recipe(args.recipe).train.batch_size
            stacked = measure_stacked(
                args.recipe,
                [1, 4, 8],
                steps=args.stacked_steps,
                device=device,
                batch_size=batch,
                data_dir=args.data_dir,
            )
            record["rows"] = stacked
            lines = ["| " + " | ".join(str(k) for k in stacked[0]) + " |", "|" + "---|" * len(stacked[0])]
            lines += [
                "| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row.values()) + " |"
                for row in stacked
            ]
            summary["stacked_table"] = "stacked training (examples/s summed over K models):\n" + "\n".join(lines)
            log(summary["stacked_table"])

    vae_reserve = args.vae_min_seconds + 60.0
    train_and_evaluate(args, summary, clock, args.recipe, best_engine, "flagship", out, "", 0.0)
    if clock.left() > vae_reserve:
        train_and_evaluate(args, summary, clock, args.vae_recipe, best_engine, "vae", out, "vae-", 0.0)
    summary["seconds"] = round(clock.elapsed(), 1)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    print(final_table(summary), flush=True)


if __name__ == "__main__":
    main()
