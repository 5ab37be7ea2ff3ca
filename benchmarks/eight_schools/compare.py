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
import itertools
import json
from pathlib import Path

import numpy as np
import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.data.eight_schools import DIM, J, variant_log_joint
from avb_zoo.evaluation.posterior import fit_mean_field, marginal_distances
from avb_zoo.modelling.factory import load

HERE = Path(__file__).resolve().parent
NUTS_CHAINS = 4  # reference_nuts.py's chains, stored one after the other
REFERENCES = {"posteriordb": HERE / "reference_nuts.csv.gz", "paper": HERE / "reference_nuts_paper.csv.gz"}
# the marginals each variant's figure shows, with their axis ranges
PANELS = {
    "posteriordb": {"mu": (-10, 20), "tau": (0, 20), "log_tau": (-6, 4)},
    "paper": {"mu": (-1.5, 3.5), "tau": (-3, 3), "abs_tau": (0, 3)},
}


def model_variant(folder: str) -> str:
    """The Eight Schools variant a model folder samples (its decoder's ``variant``; posteriordb by default)."""
    config = json.loads((Path(folder) / "config.json").read_text())
    return str(config["decoder"].get("variant", "posteriordb"))


def parameters(z: np.ndarray, variant: str) -> dict[str, np.ndarray]:
    """The named parameters from draws of z: (mu, tau, eta_1..8) (paper) or (mu, log_tau, theta_tilde_1..8)."""
    mu, eta = z[:, 0], z[:, 2:]
    if variant == "paper":
        tau = z[:, 1]
        out = {"mu": mu, "tau": tau, "abs_tau": np.abs(tau)}
    else:
        tau = np.exp(z[:, 1])
        out = {"mu": mu, "tau": tau, "log_tau": z[:, 1]}
    for j in range(J):
        out[f"theta_{j + 1}"] = mu + tau * eta[:, j]
    return out


def avb_draws(folder: str, n: int, seed: int) -> np.ndarray:
    model = load(folder)
    with torch.no_grad():
        eps = model.sample_noise(n, keyed_generator(seed, "eight-schools", "draws"))
        return model.encode(torch.zeros(n, 0), eps=eps).double().numpy()


def mean_field_draws(n: int, seed: int, steps: int, variant: str) -> np.ndarray:
    mean, std = fit_mean_field(lambda z: variant_log_joint(z, variant), DIM, steps=steps, seed=seed)
    eps = torch.randn(n, DIM, generator=keyed_generator(seed, "mean-field", "draws"), dtype=torch.float64)
    return (mean + std * eps).numpy()


def split_floors(ref: np.ndarray, chains: int = NUTS_CHAINS) -> dict[str, list[float]]:
    """W1 and energy distance between the two halves of every split of the NUTS draws into halves of whole blocks.

    Each chain is cut into its first and second half, giving 2 * chains blocks; every way of putting half of the
    blocks on each side (C(8, 4) / 2 = 35 for 4 chains) is one split. Their spread is the Monte Carlo noise of a
    distance to NUTS draws of that size: one split alone can land anywhere in it.
    """
    blocks = np.array_split(ref, 2 * chains)
    out: dict[str, list[float]] = {"wasserstein1": [], "energy": []}
    for side in itertools.combinations(range(1, 2 * chains), chains - 1):  # block 0 always on the first side
        first = {0, *side}
        a = np.concatenate([b for i, b in enumerate(blocks) if i in first])
        b = np.concatenate([b for i, b in enumerate(blocks) if i not in first])
        d = marginal_distances(a, b)
        out["wasserstein1"].append(d["wasserstein1"])
        out["energy"].append(d["energy"])
    return out


def compare(methods: dict[str, dict[str, np.ndarray]], reference: dict[str, np.ndarray]) -> list[dict]:
    """Per parameter: mean and sd of each method, its distances to NUTS, and the floor of those distances.

    The floor is the distance between two halves of the NUTS draws over every split of :func:`split_floors`
    (median, min and max): differences within it are Monte Carlo noise, not a difference between the methods.
    """
    rows = []
    for name, ref in reference.items():
        row = {"parameter": name, "nuts_mean": float(ref.mean()), "nuts_sd": float(ref.std())}
        floors = split_floors(ref)
        for kind, key in (("wasserstein1", "w1"), ("energy", "energy")):
            values = np.array(floors[kind])
            row[f"floor_{key}"] = float(np.median(values))
            row[f"floor_{key}_min"], row[f"floor_{key}_max"] = float(values.min()), float(values.max())
        row["floor_splits"] = len(floors["wasserstein1"])
        for method, draws in methods.items():
            d = marginal_distances(draws[name], ref)
            row.update({f"{method}_mean": float(draws[name].mean()), f"{method}_sd": float(draws[name].std())})
            row.update({f"{method}_w1": d["wasserstein1"], f"{method}_energy": d["energy"]})
        rows.append(row)
    return rows


def plot(methods: dict[str, dict[str, np.ndarray]], reference: dict[str, np.ndarray], path: Path, variant: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"NUTS (reference)": reference, **{LABELS[k]: v for k, v in methods.items()}}
    fig, axes = plt.subplots(2, 3, figsize=(12, 7.5))
    limits = PANELS[variant]
    for ax, (label, d) in zip(axes[0], panels.items(), strict=True):
        ax.scatter(d["tau"][:2000], d["mu"][:2000], s=3, alpha=0.35)
        ax.set(title=label, xlabel="tau", ylabel="mu", xlim=limits["tau"], ylim=limits["mu"])
    colours = {"NUTS (reference)": "black", LABELS["avb_ac"]: "tab:blue", LABELS["mean_field"]: "tab:orange"}
    for ax, (name, lim) in zip(axes[1], limits.items(), strict=True):
        bins = np.linspace(*lim, 81)
        for label, d in panels.items():
            ax.hist(d[name], bins=bins, density=True, histtype="step", lw=1.5, color=colours[label], label=label)
        ax.set(xlabel=name, ylabel="density", xlim=lim)
    axes[1][0].legend(fontsize=8)
    title = "the paper's model" if variant == "paper" else "posteriordb's non-centred model"
    fig.suptitle(f"Eight Schools ({title}): posterior of (tau, mu)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


LABELS = {"avb_ac": "AVB+AC", "mean_field": "mean-field VI"}


def measure(folder: str, draws: int, seed: int, vi_steps: int) -> tuple[str, dict, dict, list[dict]]:
    """(variant, draws of each method, NUTS draws, rows of compare) for the model in ``folder``."""
    variant = model_variant(folder)
    reference = parameters(np.loadtxt(REFERENCES[variant], delimiter=","), variant)
    methods = {
        "avb_ac": parameters(avb_draws(folder, draws, seed), variant),
        "mean_field": parameters(mean_field_draws(draws, seed, vi_steps, variant), variant),
    }
    return variant, methods, reference, compare(methods, reference)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", help="trained eight-schools-avb-ac model folder")
    parser.add_argument("--draws", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vi-steps", type=int, default=10_000, help="Adam steps of the mean-field fit")
    parser.add_argument("--png", type=Path, default=None, help="default: docs/eight_schools[_paper].png")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    variant, methods, reference, rows = measure(args.model, args.draws, args.seed, args.vi_steps)
    png = args.png or HERE.parents[1] / "docs" / (
        "eight_schools_paper.png" if variant == "paper" else "eight_schools.png"
    )
    signs = {m: float((d["tau"] > 0).mean()) for m, d in {"nuts": reference, **methods}.items()}
    plot(methods, reference, png, variant)
    if args.json:
        print(json.dumps({"variant": variant, "share_tau_positive": signs, "rows": rows}, indent=2))
        return
    head = f"{'':<10}{'NUTS':>14}{'AVB+AC':>14}{'mean-field':>14}"
    floors = f"{'floor (range)':>22}   {'E AVB+AC':>9}{'E MF':>8}{'floor (range)':>28}"
    print(head + f"   {'W1 AVB+AC':>10}{'W1 MF':>8}{floors}")
    for r in rows:
        cells = "".join(
            f"{r[f'{m}_mean']:6.2f}±{r[f'{m}_sd']:5.2f}".rjust(14) for m in ("nuts", "avb_ac", "mean_field")
        )
        floor_w1 = f"{r['floor_w1']:.3f} ({r['floor_w1_min']:.3f}-{r['floor_w1_max']:.3f})"
        floor_e = f"{r['floor_energy']:.5f} ({r['floor_energy_min']:.5f}-{r['floor_energy_max']:.5f})"
        w1 = f"{r['avb_ac_w1']:>10.3f}{r['mean_field_w1']:>8.3f}{floor_w1:>22}"
        energy = f"{r['avb_ac_energy']:>9.4f}{r['mean_field_energy']:>8.4f}{floor_e:>28}"
        print(f"{r['parameter']:<10}{cells}   {w1}   {energy}")
    n_ref = len(reference["mu"])
    if variant == "paper":
        print("share of draws with tau > 0: " + ", ".join(f"{LABELS.get(m, 'NUTS')} {v:.3f}" for m, v in signs.items()))
    print(
        f"({variant} model; mean±sd; W1 = Wasserstein-1, E = energy distance, to {n_ref} NUTS draws; floor = "
        f"between two halves of the NUTS draws, median (min-max) over {rows[0]['floor_splits']} splits of the chains' "
        f"halves; {args.draws} draws of each method; figure: {png})"
    )


if __name__ == "__main__":
    main()
