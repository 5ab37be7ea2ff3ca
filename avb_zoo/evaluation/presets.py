"""Named evaluation protocols, so a person can pick a cost before starting: ``paper`` is the AVB paper's AIS
protocol (1,000 intermediate distributions, 5 chains, 10 leapfrog steps, 2,048 MNIST test images; the
avb_mnist_8 experiment script, and the text's "1000 intermediate distributions and 5 parallel chains on 2048
test examples"); ``quick`` is a smoke check of the same estimator at about 1/400 of the AIS work on MNIST, whose
numbers are looser (a lower bound on average, and noisier). On the toy, whose four points and 2-D latent cost
little, ``quick`` runs 1,000 distributions x 16 chains: the prior start is far from the toy's sharp posteriors,
and fewer (100 x 2) put toy-avb's figure 3 nats below its quadrature value with an ESS of 1 of 2 chains, while
1,000 x 16 lands within 0.1 nats of it (``tests/test_reliability.py``). Options given on the command line override a
preset's values, and the protocol record says which ones did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from avb_zoo.errors import EvaluationError, shown
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.data import DEFAULT_N_TEST


@dataclass(frozen=True)
class Preset:
    """AIS settings and a test-set size per data set (None: the data set's default)."""

    name: str
    description: str
    ais: AISSettings
    n_test: dict[str, int] = field(default_factory=dict)
    ais_for: dict[str, AISSettings] = field(default_factory=dict)  # a data set's own AIS settings, where it has them

    def n_test_for(self, data: str) -> int | None:
        """The preset's number of test examples for the data set ``data`` (None: all the default takes)."""
        return self.n_test.get(data)

    def ais_settings_for(self, data: str | None) -> AISSettings:
        """The preset's AIS settings for the data set ``data`` (its own where it has them)."""
        return self.ais_for.get(data or "", self.ais)


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper",
        "the paper's protocol: AIS 1000 distributions x 5 chains x 10 leapfrog steps, 2048 MNIST test images",
        AISSettings(steps=1000, chains=5, leapfrog_steps=10),
        {"mnist": DEFAULT_N_TEST["mnist"]},
    ),
    "quick": Preset(
        "quick",
        "a quick check: AIS 100 distributions x 2 chains x 10 leapfrog steps, 256 MNIST test images "
        "(the toy: 1000 x 16 chains)",
        AISSettings(steps=100, chains=2, leapfrog_steps=10),
        {"mnist": 256},
        {"toy": AISSettings(steps=1000, chains=16, leapfrog_steps=10)},
    ),
}
DEFAULT_PRESET = "paper"


def find_preset(name: str) -> Preset:
    """The preset called ``name``; EvaluationError naming the choices otherwise."""
    if name not in PRESETS:
        raise EvaluationError(f"unknown evaluation preset {shown(name)}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset_ais(preset: Preset, data: str | None = None, **given: object) -> AISSettings:
    """The preset's AIS settings for the data set ``data``, with the values the user ``given`` (None: not given)
    put over them."""
    return replace(preset.ais_settings_for(data), **{k: v for k, v in given.items() if v is not None})


def preset_label(preset: Preset, overridden: list[str]) -> str:
    """``paper`` or ``paper, with --ais-steps and --n-test given``: the name recorded in the protocol."""
    return preset.name + (f", with {' and '.join(overridden)} given" if overridden else "")
