"""Reference posterior of Eight Schools (posteriordb's non-centred model) by NUTS in NumPyro.

    pip install "numpyro>=0.15"      # only this script needs it (JAX on the CPU)
    python benchmarks/eight_schools/reference_nuts.py [--out benchmarks/eight_schools/reference_nuts.csv.gz]

Writes thinned draws of z = (mu, log_tau, theta_tilde_1..8), the space avb_zoo.data.eight_schools samples,
as gzipped CSV (chain after chain) with the settings and diagnostics in '#' comment lines (numpy.loadtxt skips them).
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
from avb_zoo.data.eight_schools import MU_SCALE, PARAM_NAMES, SIGMA, TAU_SCALE, Y  # noqa: E402

CHAINS, WARMUP, SAMPLES, THIN, SEED = 4, 2000, 50_000, 20, 0


def model(sigma: jnp.ndarray, y: jnp.ndarray | None = None) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, MU_SCALE))
    tau = numpyro.sample("tau", dist.HalfCauchy(TAU_SCALE))
    with numpyro.plate("J", len(sigma)):
        theta_tilde = numpyro.sample("theta_tilde", dist.Normal(0.0, 1.0))
        numpyro.sample("y", dist.Normal(mu + tau * theta_tilde, sigma), obs=y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("reference_nuts.csv.gz"))
    args = parser.parse_args()
    numpyro.set_host_device_count(1)
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
    mcmc.run(jax.random.PRNGKey(SEED), jnp.array(SIGMA), jnp.array(Y), extra_fields=("diverging",))
    grouped = mcmc.get_samples(group_by_chain=True)
    stats = summary({"mu": grouped["mu"], "log_tau": jnp.log(grouped["tau"])})
    divergences = int(mcmc.get_extra_fields()["diverging"].sum())
    s = mcmc.get_samples()
    z = np.column_stack([s["mu"], np.log(s["tau"]), s["theta_tilde"]]).astype(np.float64)
    header = [
        "Eight Schools (posteriordb eight_schools_noncentered), "
        f"NUTS in NumPyro {numpyro.__version__}, JAX {jax.__version__}",
        f"chains {CHAINS}, warmup {WARMUP}, samples {SAMPLES} per chain, thinning {THIN}, "
        f"target_accept 0.95, seed {SEED}",
        f"divergences {divergences}; "
        + "; ".join(
            f"{k}: mean {float(v['mean']):.3f}, sd {float(v['std']):.3f}, r_hat {float(v['r_hat']):.4f}, "
            f"n_eff {float(v['n_eff']):.0f}"
            for k, v in stats.items()
        ),
        ",".join(PARAM_NAMES),
    ]
    np.savetxt(args.out, z, fmt="%.6g", delimiter=",", header="\n".join(header), comments="# ")
    print("\n".join(header[:3]))
    print(f"wrote {z.shape[0]} draws to {args.out}")


if __name__ == "__main__":
    main()
