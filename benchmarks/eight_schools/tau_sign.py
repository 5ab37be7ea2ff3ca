"""The share of a paper-variant Eight Schools sampler's mass on tau > 0, with its Monte Carlo standard error.

    python benchmarks/eight_schools/tau_sign.py models/eight-schools-avb-ac-v2 --draws 200000

The posterior is symmetric under (tau, eta) -> (-tau, -eta), so the exact share is 0.5. Draws are keyed by
(seed, chunk, 'tau-sign') in chunks of 20,000 and independent, so the s.e. is the binomial sqrt(p (1 - p) / n).
Also prints quantiles of |tau| for each sign.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from avb_zoo.compute.rng import keyed_generator  # noqa: E402
from avb_zoo.modelling.factory import load  # noqa: E402

CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--draws", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    model = load(args.model).eval()
    chunks = math.ceil(args.draws / CHUNK)
    with torch.no_grad():
        tau = torch.cat(
            [
                model.encode(
                    torch.zeros(CHUNK, 0), eps=model.sample_noise(CHUNK, keyed_generator(args.seed, c, "tau-sign"))
                )[:, 1]
                for c in range(chunks)
            ]
        )[: args.draws].double()
    n = tau.numel()
    p = float((tau > 0).double().mean())
    se = math.sqrt(p * (1 - p) / n)
    print(f"{n} draws: share of tau > 0 = {p:.4f} (Monte Carlo s.e. {se:.4f}; {(p - 0.5) / se:+.1f} s.e. from 0.5)")
    for name, part in (("tau > 0", tau[tau > 0]), ("tau < 0", -tau[tau < 0])):
        q = [float(torch.quantile(part[:1_000_000], v)) for v in (0.05, 0.5, 0.95)]
        print(f"|tau| where {name}: 5% {q[0]:.3f}, median {q[1]:.3f}, 95% {q[2]:.3f}")


if __name__ == "__main__":
    main()
