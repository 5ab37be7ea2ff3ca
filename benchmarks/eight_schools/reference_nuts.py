"""Reference posterior of Eight Schools by NUTS in NumPyro, for either variant of avb_zoo.data.eight_schools.

    pip install "numpyro>=0.15"      # only this script needs it (JAX on the CPU)
    python benchmarks/eight_schools/reference_nuts.py --variant paper        # -> reference_nuts_paper.csv.gz
    python benchmarks/eight_schools/reference_nuts.py --variant posteriordb  # -> reference_nuts.csv.gz

Writes thinned draws of z in the space the variant's AVB sampler draws ((mu, tau, eta_1..8) for the paper's
model, (mu, log_tau, theta_tilde_1..8) for posteriordb's) as gzipped CSV (chain after chain) with the
settings and diagnostics in '#' comment lines (numpy.loadtxt skips them).

The paper's model has tau ~ N(0, 1) on the whole line: its posterior is symmetric under (tau, eta) ->
(-tau, -eta). The chains start at independent random points (NumPyro's init_to_uniform), and the header
reports the share of draws with tau > 0 per chain, so a chain that stayed in one half shows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.diagnostics import summary
from numpyro.infer import MCMC, NUTS

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from avb_zoo.data.eight_schools import MU_SCALE, TAU_SCALE, VARIANTS  # noqa: E402

CHAINS, WARMUP, SAMPLES, THIN, SEED = 4, 2000, 50_000, 20, 0
OUT = {"posteriordb": "reference_nuts.csv.gz", "paper": "reference_nuts_paper.csv.gz"}


def posteriordb_model(sigma: jnp.ndarray, y: jnp.ndarray | None = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, MU_SCALE))
    tau = numpyro.sample("tau", dist.HalfCauchy(TAU_SCALE))
    with numpyro.plate("J", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def paper_model(sigma: jnp.ndarray, y: jnp.ndarray | None = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    tau = numpyro.sample("tau", dist.Normal(0.0, 1.0))
    with numpyro.plate("J", len(sigma)):
        eta = numpyro.sample("eta", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * eta, sigma), obs=y)


def draws_in_z(variant: str, s: dict[str, jnp.ndarray]) -> np.ndarray:
    """The draws as rows of z, the space the variant's AVB sampler draws."""
    if variant == "paper":
        return np.column_stack([s["mu"], s["tau"], s["eta"]]).astype(np.float64)
    return np.column_stack([s["mu"], np.log(s["tau"]), s["theta_tilde"]]).astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="paper")
    parser.add_argument("--out", type=Path, default=None, help="default: OUT[variant] beside this script")
    args = parser.parse_args()
    variant = VARIANTS[args.variant]
    out = args.out or Path(__file__).with_name(OUT[args.variant])
    numpyro.set_host_device_count(1)
    model = paper_model if args.variant == "paper" else posteriordb_model
    kernel = NUTS(model, target_accept_prob=0.95)
    mcmc = MCMC(
        kernel,
        num_warmup=WARMUP,
        num_samples=SAMPLES,
        num_chains=CHAINS,
        thinning=THIN,
        chain_method="sequential",
        progress_bar=False,
    )
    mcmc.run(jax.random.PRNGKey(SEED), jnp.array(variant.sigma), jnp.array(variant.y), extra_fields=("diverging",))
    grouped = mcmc.get_samples(group_by_chain=True)
    if args.variant == "paper":
        tracked = {"mu": grouped["mu"], "tau": grouped["tau"], "|tau|": jnp.abs(grouped["tau"])}
        signs = "; share of tau > 0 per chain: " + ", ".join(
            f"{float((grouped['tau'][c] > 0).mean()):.3f}" for c in range(CHAINS)
        )
    else:
        tracked, signs = {"mu": grouped["mu"], "log_tau": jnp.log(grouped["tau"])}, ""
    stats = summary(tracked)
    divergences = int(mcmc.get_extra_fields()["diverging"].sum())
    z = draws_in_z(args.variant, mcmc.get_samples())
    header = [
        f"Eight Schools ({variant.description}), NUTS in NumPyro {numpyro.__version__}, JAX {jax.__version__}",
        f"chains {CHAINS}, warmup {WARMUP}, samples {SAMPLES} per chain, thinning {THIN}, "
        f"target_accept 0.95, seed {SEED}",
        f"divergences {divergences}; "
        + "; ".join(
            f"{k}: mean {float(v['mean']):.3f}, sd {float(v['std']):.3f}, r_hat {float(v['r_hat']):.4f}, "
            f"n_eff {float(v['n_eff']):.0f}"
            for k, v in stats.items()
        )
        + signs,
        ",".join(variant.param_names),
    ]
    np.savetxt(out, z, fmt="%.6g", delimiter=",", header="\n".join(header), comments="# ")
    print("\n".join(header[:3]))
    print(f"wrote {z.shape[0]} draws to {out}")


if __name__ == "__main__":
    main()
