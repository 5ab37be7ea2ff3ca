"""Evaluations that say when their figure is unreliable, and a quick preset whose toy figure is not."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from avb_zoo.evaluation.reliability import THRESHOLDS, reliability_warnings

TOY_AVB = Path(__file__).parents[1] / "models" / "toy-avb"


def run(*args: str) -> tuple[int, str]:
    from avb_zoo.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.fixture
def toy_avb(tmp_path: Path) -> Path:
    dest = tmp_path / "toy-avb"
    shutil.copytree(TOY_AVB, dest)
    (dest / "metrics.json").unlink(missing_ok=True)
    return dest


@pytest.mark.slow  # about 30 s on one thread: 1000 distributions x 16 chains x 4 points, and the quadrature
def test_quick_preset_lands_within_a_tenth_of_a_nat_of_quadrature_without_warning(toy_avb: Path) -> None:
    """toy-avb at --preset quick (1000 x 16 on the toy, seed 0): within THRESHOLDS['exact_max_difference']."""
    code, out = run("eval", toy_avb, "--preset", "quick", "--quiet")
    assert code == 0, out
    metrics = json.loads((toy_avb / "metrics.json").read_text())
    assert abs(metrics["log_likelihood"] - metrics["exact_log_likelihood"]) < THRESHOLDS["exact_max_difference"]
    assert metrics["reliability"]["warnings"] == [] and "warning:" not in out
    assert metrics["protocol"]["ais"]["steps"] == 1000 and metrics["protocol"]["ais"]["chains"] == 16


def test_a_loose_budget_prints_and_records_its_warnings(toy_avb: Path) -> None:
    """100 x 2 chains: toy-avb's figure sits ~3 nats below quadrature with an ESS of ~1 of 2 chains."""
    code, out = run("eval", toy_avb, "--preset", "quick", "--ais-steps", "100", "--ais-chains", "2", "--quiet")
    assert code == 0, out
    warnings = json.loads((toy_avb / "metrics.json").read_text())["reliability"]["warnings"]
    assert any(w.startswith("AIS effective sample size") for w in warnings)
    assert any("differs from the exact (quadrature)" in w for w in warnings)
    printed = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert printed == [f"warning: {w}" for w in warnings]


@pytest.mark.parametrize(
    ("result", "chains", "expected"),
    [
        ({"diagnostics": {"ais_mean_ess": 4.7}}, 5, []),
        ({"diagnostics": {"ais_mean_ess": 2.9}}, 5, ["AIS effective sample size 2.90 of 5 chains"]),
        ({"diagnostics": {"ais_mean_ess": 1.0}}, 1, []),  # one chain: no spread to judge
        ({"diagnostics": {}, "log_likelihood_bdmc_gap": 0.6}, 5, []),
        ({"diagnostics": {}, "log_likelihood_bdmc_gap": 1.4}, 5, ["BDMC gap 1.40 nats"]),
        ({"diagnostics": {}, "log_likelihood": -1.50, "exact_log_likelihood": -1.45}, 5, []),
        ({"diagnostics": {}, "log_likelihood": -1.60, "exact_log_likelihood": -1.45}, 5, ["differs from the exact"]),
    ],
)
def test_each_check_against_its_stated_bound(result: dict, chains: int, expected: list[str]) -> None:
    warnings = reliability_warnings(result, chains)
    assert len(warnings) == len(expected)
    for warning, needle in zip(warnings, expected, strict=True):
        assert needle in warning
