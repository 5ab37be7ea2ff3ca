"""The BDMC gap of a shipped model at the AIS protocol of its own metrics.json, resumable batch by batch.

    python benchmarks/mnist_bdmc.py models/mnist-avb-ac-v1 --pairs 32 --out /tmp/bdmc-avb [--batch-size 8]

Simulates ``--pairs`` (x, z) pairs from the model and runs forward AIS (from the estimate's q0) and reverse AIS
(from the simulated z) with the AIS settings recorded in the model's metrics.json (``protocol.ais``: the same
distributions, chains, leapfrog steps, pilot), one frozen step-size schedule shared by both directions
(:mod:`avb_zoo.evaluation.bdmc`). Each finished batch is written to ``--out`` as ``batch-<first pair>.json``
and read back on a rerun with the same settings, so a stopped run resumes. Prints the ``log_likelihood_bdmc_gap``
record; ``--json`` writes it to a file as well, and ``--into-metrics`` adds it to the model's metrics.json (the
protocol being that file's own, the gap belongs beside its estimate; the record says it was run separately).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avb_zoo.evaluation.ais import AISSettings  # noqa: E402
from avb_zoo.evaluation.bdmc import model_bdmc, summarise_bdmc  # noqa: E402
from avb_zoo.evaluation.metrics import q0_description  # noqa: E402
from avb_zoo.modelling.factory import load  # noqa: E402
from avb_zoo.util.fileio import atomic_write_json  # noqa: E402


def recorded_settings(folder: Path) -> tuple[AISSettings, int]:
    """The AIS settings and seed of the model's metrics.json (its protocol record)."""
    protocol = json.loads((folder / "metrics.json").read_text())["protocol"]
    names = {f.name for f in fields(AISSettings)}
    ais = {k: v for k, v in protocol["ais"].items() if k in names}
    ais["target_acceptance"] = tuple(ais["target_acceptance"])
    return AISSettings(**ais).validate(), int(protocol["seed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="AIS distributions instead of the recorded ones (the pilot scaled alike)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    parser.add_argument("--into-metrics", action="store_true", help="add the gap to the model's metrics.json")
    args = parser.parse_args()
    if args.into_metrics and args.steps is not None:
        raise SystemExit("--into-metrics needs the recorded protocol: drop --steps")
    if args.pairs < 1 or args.batch_size < 1:
        raise SystemExit("--pairs and --batch-size must be positive")
    settings, seed = recorded_settings(args.model)
    if args.steps is not None:
        pilot = settings.pilot_steps and max(2, round(settings.pilot_steps * args.steps / settings.steps))
        settings = replace(settings, steps=args.steps, pilot_steps=pilot).validate()
    model = load(args.model).eval()
    args.out.mkdir(parents=True, exist_ok=True)
    key = {"model": str(args.model.resolve()), "ais": settings.as_dict(), "seed": seed}
    lower, upper = [], []
    for lo in range(0, args.pairs, args.batch_size):
        indices = list(range(lo, min(lo + args.batch_size, args.pairs)))
        path = args.out / f"batch-{lo:05d}.json"
        kept = json.loads(path.read_text()) if path.is_file() else None
        if kept is None or kept["key"] != key or kept["indices"] != indices:
            start = time.perf_counter()
            result = model_bdmc(model, settings, indices, seed)
            kept = {
                "key": key,
                "indices": indices,
                "lower": result.lower.tolist(),
                "upper": result.upper.tolist(),
                "seconds": round(time.perf_counter() - start, 1),
            }
            atomic_write_json(path, kept)
            print(
                f"pairs {indices[0]}-{indices[-1]}: gap {sum(kept['upper']) - sum(kept['lower']):.2f} "
                f"summed, {kept['seconds']} s",
                flush=True,
            )
        lower += kept["lower"]
        upper += kept["upper"]
    summary = summarise_bdmc(
        torch.tensor(lower, dtype=torch.float64),
        torch.tensor(upper, dtype=torch.float64),
        settings,
        q0_description(model.method),
        seed,
    )
    summary["model"] = model.config.get("id")
    if args.json is not None:
        atomic_write_json(args.json, summary)
    if args.into_metrics:
        metrics = json.loads((args.model / "metrics.json").read_text())
        record = {k: v for k, v in summary.items() if k != "model"}
        record["bdmc"]["protocol"]["run"] = (
            f"benchmarks/mnist_bdmc.py {args.model.name} --pairs {args.pairs}, after the estimate, at this file's "
            "protocol.ais and seed"
        )
        atomic_write_json(args.model / "metrics.json", {**metrics, **record})
    b = summary["bdmc"]
    print(
        f"{summary['model']}: BDMC gap {b['gap_mean']:.2f} nats (s.e. over {b['pairs']} simulated pairs "
        f"{b['gap_se']:.2f}); forward (lower) {b['lower_mean']:.2f}, reverse (upper) {b['upper_mean']:.2f}; "
        f"AIS {settings.steps} distributions x {settings.chains} chains x {settings.leapfrog_steps} leapfrog"
    )


if __name__ == "__main__":
    main()
