"""How long an evaluation will take, from a short timed pilot before it starts.

The pilot runs the real per-batch work on the first batch (ELBO draws, the importance-weighted bound for the
VAE, quadrature where it applies) and AIS with few distributions, and scales each part to the full run: AIS
time grows linearly with the number of distributions, every part with the number of examples. Its results
are thrown away: it only times (the run draws all its own randomness again, keyed as always, so the pilot
changes no number). A first untimed call warms caches (the AC moments estimate, lazy kernels) so that one-off
costs are not multiplied by the number of batches.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.metrics import ais_log_likelihood, elbo_terms, importance_weighted_bound

PILOT_DISTRIBUTIONS = 12  # AIS distributions timed in the pilot (11 transitions)
PILOT_EXAMPLES = 16  # examples of the first batch the non-AIS parts are timed on (their cost is linear in them)


@dataclass(frozen=True)
class Estimate:
    """The predicted wall time of an evaluation after its pilot, and what the pilot cost (the pilot also pays
    the one-off costs, such as the AC moments estimate, that the run then finds cached)."""

    seconds: float
    ais_seconds: float
    pilot_seconds: float
    examples: int

    def describe(self) -> str:
        from avb_zoo.util.progress import format_seconds

        return (
            f"estimated time: about {format_seconds(self.seconds)} for {self.examples} example(s) "
            f"(AIS {format_seconds(self.ais_seconds)}), after a {self.pilot_seconds:.1f} s timed pilot"
        )


def _pilot_ais(settings: AISSettings, distributions: int) -> AISSettings:
    """The run's AIS settings over ``distributions`` distributions, with the step-size pilot shrunk in step."""
    pilot = None
    if settings.adapt_step_size and settings.pilot_steps is not None:
        pilot = max(2, min(distributions, round(settings.pilot_steps * distributions / settings.steps)))
    return replace(settings, steps=distributions, pilot_steps=pilot)


def _timed(work) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def estimate_evaluation(
    model,
    x: torch.Tensor,
    indices: list[int],
    *,
    examples: int,
    ais: AISSettings,
    seed: int,
    elbo_samples: int,
    iw_samples: int | None,
    quadrature=None,
) -> Estimate:
    """Predict the wall time of evaluating ``examples`` examples in batches like ``x`` (the first batch)."""
    started = time.perf_counter()
    distributions = min(ais.steps, PILOT_DISTRIBUTIONS)
    short = _pilot_ais(ais, distributions)
    ais_log_likelihood(model, x[:1], indices[:1], _pilot_ais(ais, 2), seed)  # warm caches, untimed
    ais_part = _timed(lambda: ais_log_likelihood(model, x, indices, short, seed))
    part, few = x[:PILOT_EXAMPLES], indices[:PILOT_EXAMPLES]
    other = _timed(lambda: elbo_terms(model, part, few, seed, elbo_samples))
    if iw_samples is not None:
        other += _timed(lambda: importance_weighted_bound(model, part, few, seed, iw_samples))
    if quadrature is not None:
        other += _timed(lambda: quadrature(model, part))
    scale = (ais.steps - 1) / max(distributions - 1, 1)  # transitions of the run over those timed
    ais_seconds = ais_part * scale * examples / x.shape[0]  # AIS is timed on a whole batch: its cost per
    # example falls with the batch size, so a smaller one would mislead
    return Estimate(
        seconds=ais_seconds + other * examples / part.shape[0],
        ais_seconds=ais_seconds,
        pilot_seconds=time.perf_counter() - started,
        examples=examples,
    )
