"""The toy problem's latent codes per data point, like the paper's figure (VAE vs AVB on four 2x2 images).

    avb-zoo train toy-vae --out runs/toy-vae && avb-zoo train toy-avb --out runs/toy-avb
    python benchmarks/toy_latents.py runs/toy-vae runs/toy-avb [--codes 2000] [--png PATH]

Each panel shows z ~ q(z|x) for the four points (one colour each) over the prior's 1, 2 and 3 sigma
circles, titled with the model's exact log-likelihood (quadrature; the optimum is -log 4 = -1.386).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from avb_zoo.compute.rng import keyed_generator
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.data.toy import TOY_POINTS
from avb_zoo.evaluation.quadrature import quadrature_log_likelihood
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.weights import WEIGHTS_FILE

COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red")


def codes(folder: str, n: int, seed: int) -> tuple[str, np.ndarray, float]:
    """(label with the training steps, codes [4, n, 2], exact mean log p(x)) of one toy model folder."""
    model = load(folder)
    with torch.no_grad():
        z = [model.encode(row.expand(n, -1), keyed_generator(seed, k, "codes")) for k, row in enumerate(TOY_POINTS)]
        ll = quadrature_log_likelihood(model, TOY_POINTS).mean().item()
    steps = read_safetensors(Path(folder) / WEIGHTS_FILE)[1].get("step", "?")
    label = {"vae": "VAE", "avb": "AVB", "avb-ac": "AVB+AC"}[model.method] + f" ({steps} steps)"
    return label, torch.stack(z).numpy(), ll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", help="trained toy model folders")
    parser.add_argument("--codes", type=int, default=2000, help="codes per data point")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=Path(__file__).resolve().parent / "toy_latents.png")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(args.models), figsize=(4.5 * len(args.models), 4.6), squeeze=False)
    circle = np.linspace(0, 2 * math.pi, 200)
    for ax, folder in zip(axes[0], args.models, strict=True):
        label, z, ll = codes(folder, args.codes, args.seed)
        for r in (1, 2, 3):
            ax.plot(r * np.cos(circle), r * np.sin(circle), color="0.8", lw=0.8)
        for k in range(4):
            ax.scatter(z[k, :, 0], z[k, :, 1], s=2, alpha=0.3, color=COLOURS[k], label=f"x = e{k + 1}")
        ax.set(title=f"{label}: log p(x) = {ll:.3f}", xlim=(-3.5, 3.5), ylim=(-3.5, 3.5), aspect="equal")
        print(f"{folder}: {label}, exact log p(x) {ll:.4f} (optimum {-math.log(4):.4f})")
    axes[0][0].legend(markerscale=4, fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(args.png, dpi=90)
    print(f"figure: {args.png}")


if __name__ == "__main__":
    main()
