"""When an evaluation's own diagnostics say its log-likelihood is not to be trusted: a warning each, in words.

Three checks, each against a stated bound (:data:`THRESHOLDS`):

* the chains' effective sample size. log p(x) is log mean_k w_k over K chains; the Kish ESS of their weights is
  K / (1 + CV^2) for the weights' coefficient of variation CV. Below ``ess_min_fraction`` of K (CV^2 above 2/3)
  a few chains carry the estimate, and the delta-method Monte Carlo s.e., itself computed from those few
  weights, understates the error (two chains with ESS 1.01 look precise and are not).
* the BDMC gap, where measured: at that budget forward AIS may sit as far as the gap below log p(x) on data
  like the simulated pairs; above ``bdmc_max_gap`` nats that looseness is larger than the differences between
  models this zoo compares.
* an exact log p(x), where there is one (quadrature): a difference above ``exact_max_difference`` nats.
"""

from __future__ import annotations

from typing import Any

THRESHOLDS = {"ess_min_fraction": 0.6, "bdmc_max_gap": 1.0, "exact_max_difference": 0.1}


def reliability_warnings(result: dict[str, Any], chains: int) -> list[str]:
    """One line per check that ``result`` (an evaluation's metrics) fails; empty when none does."""
    out = []
    ess = result.get("diagnostics", {}).get("ais_mean_ess")
    if isinstance(ess, float) and chains > 1 and ess < THRESHOLDS["ess_min_fraction"] * chains:
        out.append(
            f"AIS effective sample size {ess:.2f} of {chains} chains is below {THRESHOLDS['ess_min_fraction']:g} "
            "of the chains: a few chains carry the estimate and its MC s.e. understates the error"
        )
    gap = result.get("log_likelihood_bdmc_gap")
    if isinstance(gap, float) and gap > THRESHOLDS["bdmc_max_gap"]:
        out.append(
            f"BDMC gap {gap:.2f} nats on simulated data exceeds {THRESHOLDS['bdmc_max_gap']:g}: at this budget "
            "AIS may sit that far below log p(x)"
        )
    exact, ais = result.get("exact_log_likelihood"), result.get("log_likelihood")
    if isinstance(exact, float) and isinstance(ais, float):
        difference = abs(ais - exact)
        if difference > THRESHOLDS["exact_max_difference"]:
            out.append(
                f"AIS log p(x) {ais:.2f} differs from the exact (quadrature) {exact:.2f} by {difference:.2f} nats, "
                f"more than {THRESHOLDS['exact_max_difference']:g}"
            )
    return out


def reliability_record(result: dict[str, Any], chains: int) -> dict[str, Any]:
    """The metrics.json field: the warnings and the bounds they were checked against."""
    return {"warnings": reliability_warnings(result, chains), "thresholds": dict(THRESHOLDS)}
