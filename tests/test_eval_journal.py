"""A resumable evaluation: finished batches kept in --resume-dir are read back, with the same result."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_eval import MNIST_SUBSET, SMALL_MNIST_AC, run, saved
from toy_fixtures import single_thread, trained_toy_vae  # noqa: F401

import avb_zoo.evaluation.evaluate as evaluate_module
from avb_zoo.errors import EvaluationError
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.evaluate import EvalSettings, comparable, evaluate
from avb_zoo.evaluation.journal import KEY_FILE

SETTINGS = EvalSettings(ais=AISSettings(steps=8, chains=3), batch_size=1, iw_samples=20, elbo_samples=10)


class Stop(Exception):
    pass


def stop_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Make the evaluation die (like a killed process) when it starts batch number ``batches`` + 1."""
    real = evaluate_module.ais_log_likelihood
    calls = {"n": 0}

    def dying(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] > batches:
            raise Stop
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "ais_log_likelihood", dying)


def test_a_stopped_evaluation_resumes_with_the_same_result(
    trained_toy_vae,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    whole = evaluate(trained_toy_vae, SETTINGS)
    journal = tmp_path / "journal"
    with monkeypatch.context() as patch:
        stop_after(patch, 2)
        with pytest.raises(Stop):
            evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)
    assert len(list(journal.glob("batch-*.safetensors"))) == 2
    calls = []
    real = evaluate_module.ais_log_likelihood
    monkeypatch.setattr(evaluate_module, "ais_log_likelihood", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)
    assert len(calls) == 2  # only the two batches that were not kept ran
    assert resumed["diagnostics"]["resumed_batches"] == 2
    assert comparable(resumed) == comparable(whole)
    again = evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)  # all four kept: nothing runs
    assert len(calls) == 2 and again["diagnostics"]["resumed_batches"] == 4
    assert comparable(again) == comparable(whole)


def test_a_journal_of_other_settings_or_weights_is_refused(trained_toy_vae, tmp_path: Path) -> None:  # noqa: F811
    journal = tmp_path / "journal"
    evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)
    other = EvalSettings(ais=AISSettings(steps=9, chains=3), batch_size=1, iw_samples=20, elbo_samples=10)
    with pytest.raises(EvaluationError, match="differ in ais"):
        evaluate(trained_toy_vae, other, resume_dir=journal)
    with torch.no_grad():
        next(trained_toy_vae.parameters()).add_(1e-3)
    try:
        with pytest.raises(EvaluationError, match="weights_sha256"):
            evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)
    finally:
        with torch.no_grad():
            next(trained_toy_vae.parameters()).sub_(1e-3)


@pytest.mark.parametrize("damage", ["truncate", "other-examples"])
def test_a_damaged_or_foreign_batch_file_is_named(
    trained_toy_vae,  # noqa: F811
    tmp_path: Path,
    damage: str,
) -> None:
    journal = tmp_path / "journal"
    evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)
    first, second = sorted(journal.glob("batch-*.safetensors"))[:2]
    if damage == "truncate":
        first.write_bytes(first.read_bytes()[:40])
    else:
        first.write_bytes(second.read_bytes())
    with pytest.raises(EvaluationError, match=first.name):
        evaluate(trained_toy_vae, SETTINGS, resume_dir=journal)


def test_a_larger_test_set_reuses_the_smaller_ones_batches(tmp_path: Path) -> None:
    folder = saved(SMALL_MNIST_AC, tmp_path / "ac")
    journal = tmp_path / "journal"
    common = ["--ais-steps", "6", "--ais-chains", "2", "--batch-size", "2", "--data-dir", MNIST_SUBSET, "--json"]
    common += ["--resume-dir", journal, "--no-write"]
    code, out = run("eval", folder, "--n-test", "4", *common)
    assert code == 0, out
    code, out = run("eval", folder, "--n-test", "6", *common)
    assert code == 0, out
    bigger = json.loads(out)
    assert bigger["diagnostics"]["resumed_batches"] == 2
    code, out = run("eval", folder, "--n-test", "6", *common[:-3], "--no-write")  # no journal at all
    assert code == 0, out
    assert comparable(json.loads(out)) == comparable(bigger)
    assert len(bigger["protocol"]["example_indices"]) == 6
    assert json.loads((journal / KEY_FILE).read_text())["batch_size"] == 2
