"""AVB+AC against the VAE on MNIST, example by example: which one wins, and by how much.

    python benchmarks/mnist_vae_vs_avb.py --pair "equal wall time" JOURNAL_A JOURNAL_B \\
        [--pair "equal examples" JOURNAL_A JOURNAL_C ...] [--gaps "equal wall time" BDMC_A BDMC_B ...]

Each JOURNAL is the --resume-dir of an ``avb-zoo eval`` run (journal.json + one safetensors file per batch).
Two evaluations with the same seed share their test images and binarisations (both are keyed by the seed and
the example index), so the comparison is paired: the difference is taken image by image on the images both
evaluated, and its error bar is the spread of those differences over images (std / sqrt(n)), which is much
smaller than the spread of either model's log-likelihoods. The AIS Monte Carlo error of each mean is printed
too. The runs must share the AIS protocol; the script refuses pairs that do not.

``--on-images-of JOURNAL`` restricts every pair to the images JOURNAL evaluated (e.g. a smaller run at a larger
budget, so that both budgets are compared on the same images). ``--gaps LABEL BDMC_A BDMC_B`` puts the BDMC gap of
each model (a metrics.json written with ``--bdmc``, or the summary of ``benchmarks/mnist_bdmc.py --json``) beside
the pair called LABEL: the looseness of each AIS figure at that budget on data simulated from the model. The gaps
must be measured at the pair's AIS protocol (the script refuses others). Where the paired difference is smaller than
the larger gap, the line says that the ranking is within the estimator's looseness: AIS may sit up to a gap below
log p(x), by different amounts for the two models; where it exceeds both gaps but not twice its paired s.e., that it
is within the spread over images.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avb_zoo.compute.tensor_files import read_safetensors  # noqa: E402


def per_example(journal: Path) -> tuple[dict, dict[int, float], dict[int, float]]:
    """(the journal's key, log p(x) per example index, the AIS Monte Carlo s.e. per example index)."""
    key = json.loads((journal / "journal.json").read_text())
    values: dict[int, float] = {}
    mc_se: dict[int, float] = {}
    for path in sorted(journal.glob("batch-*.safetensors")):
        tensors, _ = read_safetensors(path)
        for i, ll, se in zip(
            tensors["indices"].tolist(),
            tensors["col.log_likelihood"].tolist(),
            tensors["diag.mc_se"].tolist(),
            strict=True,
        ):
            values[i], mc_se[i] = ll, se
    return key, values, mc_se


def read_gap(path: Path, ais: dict) -> tuple[float, float | None]:
    """(mean BDMC gap, its s.e. over simulated pairs) of a metrics.json or mnist_bdmc.py summary at ``ais``."""
    record = json.loads(path.read_text())
    if "log_likelihood_bdmc_gap" not in record:
        raise SystemExit(f"{path} holds no log_likelihood_bdmc_gap")
    measured = record["bdmc"]["protocol"]["ais"]
    for name in ("steps", "chains", "leapfrog_steps", "schedule", "pilot_steps", "pilot_chains"):
        if measured.get(name) != ais.get(name):
            raise SystemExit(
                f"{path}: the gap was measured with AIS {name} {measured.get(name)}, the pair uses {ais.get(name)}"
            )
    return record["log_likelihood_bdmc_gap"], record.get("log_likelihood_bdmc_gap_spread_se")


def compare(
    label: str, a: Path, b: Path, gaps: tuple[Path, Path] | None = None, images: set[int] | None = None
) -> list[str]:
    key_a, ll_a, se_a = per_example(a)
    key_b, ll_b, se_b = per_example(b)
    for field in ("ais", "seed"):
        if key_a[field] != key_b[field]:
            raise SystemExit(f"{a} and {b} differ in {field}: the pair is not comparable")
    common = sorted(set(ll_a) & set(ll_b) & (set(ll_a) if images is None else images))
    if len(common) < 2:
        raise SystemExit(f"{a} and {b} share {len(common)} evaluated images; need at least 2")
    xa = torch.tensor([ll_a[i] for i in common], dtype=torch.float64)
    xb = torch.tensor([ll_b[i] for i in common], dtype=torch.float64)
    n = len(common)
    diff = xa - xb
    mc = [math.sqrt(sum(s[i] ** 2 for i in common)) / n for s in (se_a, se_b)]
    spread = float(diff.std(unbiased=True) / math.sqrt(n))
    wins = int((diff > 0).sum())
    lines = [
        f"{label:<18}{a.name:<28}{b.name:<28}{n:>6}{float(xa.mean()):>10.2f}{float(xb.mean()):>10.2f}"
        f"{float(diff.mean()):>+10.2f}{spread:>11.2f}{math.hypot(*mc):>10.3f}{wins / n:>9.0%}"
    ]
    if gaps is not None:
        (gap_a, se_a), (gap_b, se_b) = (read_gap(path, key_a["ais"]) for path in gaps)
        shown = [f"{g:.2f} (s.e. {s:.2f})" if s is not None else f"{g:.2f}" for g, s in ((gap_a, se_a), (gap_b, se_b))]
        size = abs(float(diff.mean()))
        if size < max(gap_a, gap_b):
            verdict = "the difference is within the larger gap: the ranking is not established at this budget"
        elif size < 2 * spread:
            verdict = "the difference exceeds both gaps but not 2 paired s.e.: the ranking is not established"
        else:
            verdict = "the difference exceeds both gaps and 2 paired s.e."
        lines.append(f"{'':<18}BDMC gap A {shown[0]}, B {shown[1]} nats: {verdict}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", nargs=3, action="append", metavar=("LABEL", "JOURNAL_A", "JOURNAL_B"), required=True)
    parser.add_argument("--gaps", nargs=3, action="append", default=[], metavar=("LABEL", "BDMC_A", "BDMC_B"))
    parser.add_argument(
        "--on-images-of", type=Path, default=None, help="compare only on the images this journal evaluated"
    )
    args = parser.parse_args()
    images = None if args.on_images_of is None else set(per_example(args.on_images_of)[1])
    gaps = {label: (Path(ga), Path(gb)) for label, ga, gb in args.gaps}
    unknown = set(gaps) - {label for label, _, _ in args.pair}
    if unknown:
        raise SystemExit(f"--gaps names no --pair: {sorted(unknown)}")
    header = (
        f"{'comparison':<18}{'A':<28}{'B':<28}{'images':>6}{'A mean':>10}{'B mean':>10}{'A - B':>10}"
        f"{'spread se':>11}{'MC se':>10}{'A wins':>9}"
    )
    lines = [header]
    for label, a, b in args.pair:
        lines += compare(label, Path(a), Path(b), gaps.get(label), images)
    print("\n".join(lines))
    print(
        "log p(x) by AIS in nats, on the images both runs evaluated; 'spread se' is the standard error of the "
        "paired difference over images (std / sqrt(n)), 'MC se' the AIS Monte Carlo error of the difference "
        "of the means; 'A wins' the share of images where A's estimate is higher. BDMC gap: reverse minus "
        "forward AIS on pairs simulated from each model at the same protocol, s.e. over the simulated pairs."
    )


if __name__ == "__main__":
    main()
