"""Evaluation a person can plan (issue 17 item 2): named presets, the run time estimated from a timed pilot
before AIS starts, and a pilot that changes no number."""

from __future__ import annotations

import json
import shutil
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from toy_fixtures import single_thread  # noqa: F401

from avb_zoo.errors import EvaluationError
from avb_zoo.evaluation import timing
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.evaluate import EvalSettings, comparable, evaluate
from avb_zoo.evaluation.presets import PRESETS, find_preset
from avb_zoo.modelling.factory import load

SHIPPED_TOY = Path(__file__).resolve().parents[1] / "models" / "toy-avb"


def run(*args):
    from avb_zoo.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def toy(tmp_path):
    folder = tmp_path / "toy-avb"
    shutil.copytree(SHIPPED_TOY, folder)
    return folder


def test_paper_preset_is_the_papers_protocol():
    paper = find_preset("paper")
    assert (paper.ais.steps, paper.ais.chains, paper.ais.leapfrog_steps) == (1000, 5, 10)
    assert paper.n_test_for("mnist") == 2048 and paper.n_test_for("toy") is None
    quick = find_preset("quick")
    assert quick.ais.steps * quick.ais.chains * quick.n_test_for("mnist") * 100 < 1000 * 5 * 2048
    assert set(PRESETS) == {"paper", "quick"}
    toy = quick.ais_settings_for("toy")
    assert (toy.steps, toy.chains) == (1000, 16) and quick.ais_settings_for("mnist") == quick.ais


def test_preset_on_the_command_line_with_an_override_and_an_estimate(toy):
    done = run("eval", toy, "--preset", "quick", "--ais-steps", "8")
    assert done.exit_code == 0, done.output
    assert done.stderr.startswith("preset quick, with --ais-steps given: estimated time: about ")
    assert "timed pilot" in done.stderr and "AIS: 8 steps (linear) x 16 chains x 10 leapfrog" in done.stdout
    result = json.loads((toy / "metrics.json").read_text())
    ais = result["protocol"]["ais"]
    assert (ais["steps"], ais["chains"], ais["leapfrog_steps"]) == (8, 16, 10)  # steps given, chains the preset's (toy)
    assert result["protocol"]["preset"] == "quick, with --ais-steps given"
    done = run("eval", toy, "--preset", "quick", "--ais-steps", "8", "--json", "--no-write")
    assert json.loads(done.output)["protocol"]["preset"] == "quick, with --ais-steps given"  # JSON alone


def test_estimate_only_runs_no_evaluation(toy):
    done = run("eval", toy, "--preset", "quick", "--estimate-only")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("preset quick: estimated time: about ") and done.output.count("\n") == 1
    assert sorted(p.name for p in toy.iterdir()) == sorted(p.name for p in SHIPPED_TOY.iterdir())  # nothing written


def test_unknown_preset_is_one_line(toy):
    done = run("eval", toy, "--preset", "fast")
    assert done.exit_code == 1
    assert done.output == "error: unknown evaluation preset 'fast'; choose one of paper, quick\n"
    with pytest.raises(EvaluationError):
        find_preset("")


def test_the_pilot_changes_no_number():
    model = load(SHIPPED_TOY)
    settings = EvalSettings(ais=AISSettings(steps=6, chains=2), seed=3)
    seen = []
    with_pilot = evaluate(model, settings, on_estimate=seen.append)
    without = evaluate(model, settings)
    assert len(seen) == 1 and seen[0].seconds > 0 and 0 < seen[0].ais_seconds <= seen[0].seconds
    assert comparable(with_pilot) == comparable(without)


def test_the_estimate_scales_the_pilot_to_the_run(monkeypatch):
    """AIS time grows with the transitions and every part with the batches; one-off warm-up is not counted."""
    calls = []
    clock = [0.0]  # a fake clock, advanced by the fakes: the numbers do not depend on how busy the machine is

    def fake_ais(model, x, indices, settings, seed):
        calls.append(settings.steps)
        clock[0] += 0.002 * (settings.steps - 1) + (0.5 if len(calls) == 1 else 0.0)  # the first call warms up

    def fake_elbo(model, x, *args):
        clock[0] += 0.001 * len(x)

    monkeypatch.setattr(timing, "ais_log_likelihood", fake_ais)
    monkeypatch.setattr(timing, "elbo_terms", fake_elbo)
    monkeypatch.setattr(timing, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))
    x = torch.zeros(32, 4)
    est = timing.estimate_evaluation(
        None, x, list(range(32)), examples=128, ais=AISSettings(steps=1000), seed=0, elbo_samples=1, iw_samples=None
    )
    assert calls == [2, timing.PILOT_DISTRIBUTIONS]
    assert est.ais_seconds == pytest.approx(0.002 * 999 * 4, rel=1e-6)  # 4 batches of 999 transitions
    assert est.seconds - est.ais_seconds == pytest.approx(0.001 * 128, rel=1e-6)  # per example, from 16 of them
    assert est.pilot_seconds == pytest.approx(0.5 + 0.002 + 0.002 * (timing.PILOT_DISTRIBUTIONS - 1) + 0.016, abs=0.1)
