"""AVB+AC against the VAE on MNIST, example by example: which one wins, and by how much.

    python benchmarks/mnist_vae_vs_avb.py --pair "equal wall time" JOURNAL_A JOURNAL_B \\
        [--pair "equal examples" JOURNAL_A JOURNAL_C ...]

Each JOURNAL is the --resume-dir of an ``avb-zoo eval`` run (journal.json + one safetensors file per batch).
Two evaluations with the same seed share their test images and binarisations (both are keyed by the seed and
the example index), so the comparison is paired: the difference is taken image by image on the images both
evaluated, and its error bar is the spread of those differences over images (std / sqrt(n)), which is much
smaller than the spread of either model's log-likelihoods. The AIS Monte Carlo error of each mean is printed
too. The runs must share the AIS protocol; the script refuses pairs that do not.
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

from avb_zoo.util.fileio import read_safetensors  # noqa: E402


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


def compare(label: str, a: Path, b: Path) -> list[str]:
    key_a, ll_a, se_a = per_example(a)
    key_b, ll_b, se_b = per_example(b)
    for field in ("ais", "seed"):
        if key_a[field] != key_b[field]:
            raise SystemExit(f"{a} and {b} differ in {field}: the pair is not comparable")
    common = sorted(set(ll_a) & set(ll_b))
    if len(common) < 2:
        raise SystemExit(f"{a} and {b} share {len(common)} evaluated images; need at least 2")
    xa = torch.tensor([ll_a[i] for i in common], dtype=torch.float64)
    xb = torch.tensor([ll_b[i] for i in common], dtype=torch.float64)
    n = len(common)
    diff = xa - xb
    mc = [math.sqrt(sum(s[i] ** 2 for i in common)) / n for s in (se_a, se_b)]
    spread = float(diff.std(unbiased=True) / math.sqrt(n))
    wins = int((diff > 0).sum())
    return [
        f"{label:<18}{a.name:<28}{b.name:<28}{n:>6}{float(xa.mean()):>10.2f}{float(xb.mean()):>10.2f}"
        f"{float(diff.mean()):>+10.2f}{spread:>11.2f}{math.hypot(*mc):>10.3f}{wins / n:>9.0%}"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pair", nargs=3, action="append", metavar=("LABEL", "JOURNAL_A", "JOURNAL_B"), required=True)
    args = parser.parse_args()
    header = (
        f"{'comparison':<18}{'A':<28}{'B':<28}{'images':>6}{'A mean':>10}{'B mean':>10}{'A - B':>10}"
        f"{'spread se':>11}{'MC se':>10}{'A wins':>9}"
    )
    lines = [header]
    for label, a, b in args.pair:
        lines += compare(label, Path(a), Path(b))
    print("\n".join(lines))
    print(
        "log p(x) by AIS in nats, on the images both runs evaluated; 'spread se' is the standard error of the "
        "paired difference over images (std / sqrt(n)), 'MC se' the AIS Monte Carlo error of the difference "
        "of the means; 'A wins' the share of images where A's estimate is higher."
    )


if __name__ == "__main__":
    main()
