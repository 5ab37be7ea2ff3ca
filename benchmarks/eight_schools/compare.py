"""Eight Schools: the AVB+AC posterior sampler and mean-field Gaussian VI against a NUTS reference.

    avb-zoo train eight-schools-avb-ac --out runs/eight-schools-avb-ac
    python benchmarks/eight_schools/compare.py runs/eight-schools-avb-ac [--draws 10000] [--png PATH] [--json]

Per parameter (mu, tau, log tau and the school effects theta_j = mu + tau * theta_tilde_j): mean and sd
under each method, and the Wasserstein-1 and energy distances of its marginal to the NUTS draws in
reference_nuts.csv (made by reference_nuts.py). The figure shows (tau, mu) for each method and the two
marginals overlaid, like the paper's Eight Schools figure.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from avb_zoo.data.eight_schools import DIM, J, log_joint
from avb_zoo.evaluation.posterior import fit_mean_field, marginal_distances
from avb_zoo.model_io import load
from avb_zoo.rng import keyed_generator

HERE = Path(__file__).resolve().parent
REFERENCE = HERE / "reference_nuts.csv.gz"


def parameters(z: np.ndarray) -> dict[str, np.ndarray]:
    """The named parameters from draws of z = (mu, log_tau, theta_tilde_1..8)."""
    mu, log_tau, eta = z[:, 0], z[:, 1], z[:, 2:]
    tau = np.exp(log_tau)
    out = {"mu": mu, "tau": tau, "log_tau": log_tau}
    for j in range(J):
        out[f"theta_{j + 1}"] = mu + tau * eta[:, j]
    return out


def avb_draws(folder: str, n: int, seed: int) -> np.ndarray:
    model = load(folder)
    with torch.no_grad():
        eps = model.sample_noise(n, keyed_generator(seed, "eight-schools", "draws"))
        return model.encode(torch.zeros(n, 0), eps=eps).double().numpy()


def mean_field_draws(n: int, seed: int, steps: int) -> np.ndarray:
    mean, std = fit_mean_field(log_joint, DIM, steps=steps, seed=seed)
    eps = torch.randn(n, DIM, generator=keyed_generator(seed, "mean-field", "draws"), dtype=torch.float64)
    return (mean + std * eps).numpy()


def compare(methods: dict[str, dict[str, np.ndarray]], reference: dict[str, np.ndarray]) -> list[dict]:
    """Per parameter: mean and sd of each method, its distances to NUTS, and the floor of those distances.

    The floor is the distance between the two halves of the NUTS draws (chains 1-2 against 3-4): differences
    below it are Monte Carlo noise, not a difference between the methods.
    """
    rows = []
    for name, ref in reference.items():
        row = {"parameter": name, "nuts_mean": float(ref.mean()), "nuts_sd": float(ref.std())}
        half = ref.size // 2
        floor = marginal_distances(ref[:half], ref[half:])
        row.update({"floor_w1": floor["wasserstein1"], "floor_energy": floor["energy"]})
        for method, draws in methods.items():
            d = marginal_distances(draws[name], ref)
            row.update({f"{method}_mean": float(draws[name].mean()), f"{method}_sd": float(draws[name].std())})
            row.update({f"{method}_w1": d["wasserstein1"], f"{method}_energy": d["energy"]})
        rows.append(row)
    return rows


def plot(methods: dict[str, dict[str, np.ndarray]], reference: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"NUTS (reference)": reference, **{LABELS[k]: v for k, v in methods.items()}}
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    for ax, (label, d) in zip(axes[0], panels.items(), strict=True):
        ax.scatter(d["tau"][:2000], d["mu"][:2000], s=3, alpha=0.35)
        ax.set(title=label, xlabel="tau", ylabel="mu", xlim=(0, 20), ylim=(-10, 20))
    colours = {"NUTS (reference)": "black", LABELS["avb_ac"]: "tab:blue", LABELS["mean_field"]: "tab:orange"}
    for ax, name, lim in zip(axes[1], ("mu", "tau", "log_tau"), ((-10, 20), (0, 20), (-6, 4)), strict=True):
        bins = np.linspace(*lim, 81)
        for label, d in panels.items():
            ax.hist(d[name], bins=bins, density=True, histtype="step", lw=1.5, color=colours[label], label=label)
        ax.set(xlabel=name, ylabel="density", xlim=lim)
    axes[1][0].legend(fontsize=8)
    fig.suptitle("Eight Schools (non-centred): posterior of (tau, mu)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


LABELS = {"avb_ac": "AVB+AC", "mean_field": "mean-field VI"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="trained eight-schools-avb-ac model folder")
    parser.add_argument("--draws", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vi-steps", type=int, default=10_000, help="Adam steps of the mean-field fit")
    parser.add_argument("--png", type=Path, default=HERE / "eight_schools.png")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    reference = parameters(np.loadtxt(REFERENCE, delimiter=","))
    methods = {
        "avb_ac": parameters(avb_draws(args.model, args.draws, args.seed)),
        "mean_field": parameters(mean_field_draws(args.draws, args.seed, args.vi_steps)),
    }
    rows = compare(methods, reference)
    plot(methods, reference, args.png)
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    head = f"{'':<10}{'NUTS':>14}{'AVB+AC':>14}{'mean-field':>14}"
    print(head + f"   {'W1 AVB+AC':>10}{'W1 MF':>8}{'floor':>7}   {'E AVB+AC':>9}{'E MF':>8}{'floor':>8}")
    for r in rows:
        cells = "".join(
            f"{r[f'{m}_mean']:6.2f}±{r[f'{m}_sd']:5.2f}".rjust(14) for m in ("nuts", "avb_ac", "mean_field")
        )
        w1 = f"{r['avb_ac_w1']:>10.3f}{r['mean_field_w1']:>8.3f}{r['floor_w1']:>7.3f}"
        energy = f"{r['avb_ac_energy']:>9.4f}{r['mean_field_energy']:>8.4f}{r['floor_energy']:>8.4f}"
        print(f"{r['parameter']:<10}{cells}   {w1}   {energy}")
    n_ref = len(reference["mu"])
    print(
        f"(mean±sd; W1 = Wasserstein-1, E = energy distance, to {n_ref} NUTS draws; floor = between the halves "
        f"of the NUTS draws; figure: {args.png})"
    )


if __name__ == "__main__":
    main()
