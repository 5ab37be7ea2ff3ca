"""Paired comparison of two evaluations of the same test images: mean difference of log p(x) with its s.e.

    python benchmarks/paired_ais.py JOURNAL_A JOURNAL_B [--column log_likelihood]

Each argument is a folder given to ``avb-zoo eval --resume-dir``: it keeps every finished batch with its
example indices and per-example values. Both evaluations must have used the same images (same seed, same
--n-test) and the same AIS settings; the script checks that the indices agree. The difference B - A is
taken per image, so the spread over images that both models share (some digits are harder for every model)
cancels; its standard error is the standard deviation of the per-image differences / sqrt(n), which
contains the AIS Monte Carlo noise of both runs as well as the spread of the difference over images.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from safetensors.numpy import load_file


def per_example(folder: Path, column: str) -> dict[int, float]:
    """{example index: value} over every batch file of a --resume-dir folder (read with safetensors)."""
    values: dict[int, float] = {}
    batches = sorted(folder.glob("batch-*.safetensors"))
    if not batches:
        raise SystemExit(f"error: {folder} holds no batch files (was it given to avb-zoo eval --resume-dir?)")
    for path in batches:
        tensors = load_file(str(path))
        key = f"col.{column}"
        if key not in tensors:
            raise SystemExit(f"error: {path} has no column {column!r}")
        for index, value in zip(tensors["indices"].tolist(), tensors[key].tolist(), strict=True):
            values[int(index)] = float(value)
    return values


def compare(a: dict[int, float], b: dict[int, float]) -> dict[str, float]:
    if set(a) != set(b):
        raise SystemExit(f"error: the evaluations cover different images ({len(set(a) ^ set(b))} differ)")
    diffs = [b[i] - a[i] for i in sorted(a)]
    n = len(diffs)
    mean = sum(diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (n - 1)) if n > 1 else float("nan")
    return {
        "n": n,
        "mean_a": sum(a.values()) / n,
        "mean_b": sum(b.values()) / n,
        "difference": mean,
        "se": sd / math.sqrt(n),
        "sd_of_differences": sd,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", type=Path)
    parser.add_argument("b", type=Path)
    parser.add_argument("--column", default="log_likelihood")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for folder in (args.a, args.b):
        key = json.loads((folder / "journal.json").read_text())
        print(f"{folder}: {json.dumps({k: key[k] for k in sorted(key) if k != 'weights_sha256'})}")
    r = compare(per_example(args.a, args.column), per_example(args.b, args.column))
    if args.json:
        print(json.dumps(r))
        return
    print(f"| images | {args.column} A | {args.column} B | B - A (paired) | s.e. of B - A | |B - A| / s.e. |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {r['n']} | {r['mean_a']:.3f} | {r['mean_b']:.3f} | {r['difference']:+.3f} | {r['se']:.3f} | "
        f"{abs(r['difference']) / r['se']:.2f} |"
    )


if __name__ == "__main__":
    main()
