"""The pushed model card: metadata huggingface_hub's own ModelCard parses, the metrics of metrics.json, a picture."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from huggingface_hub import ModelCard, hf_hub_download
from zoo_helpers import SMALL, model_folder

from avb_zoo.cards.card import render_model_card
from avb_zoo.modelfile.provenance import write_training_record
from avb_zoo.modelling.publishing import push

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
METRICS = {
    "log_likelihood": -91.3,
    "log_likelihood_mc_se": 0.05,
    "log_likelihood_spread_se": 0.4,
    "reconstruction_error": 60.2,
    "elbo": -95.0,
    "iw_bound": -92.1,
    "protocol": {"ais": {"steps": 1000, "chains": 5, "leapfrog_steps": 10, "schedule": "linear"}, "n_test": 2048},
}


def test_the_card_parses_with_modelcard_and_carries_metrics_json(
    hub_server: HubFixture,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    folder = model_folder(tmp_path / "m", {**SMALL, "id": "me/card-v1"}, 0, METRICS)
    write_training_record(folder, ["me/card-v1", "--out", "runs/card"], "cpu", 123.4, 500)
    push(folder, "me/card")
    files = set(hub_server.server.repo("me/card").commits[hub_server.server.repo("me/card").branches["main"]].files)
    assert {"samples.png", "training.json", "README.md"} <= files
    text = Path(hf_hub_download("me/card", "README.md", endpoint=hub_server.endpoint)).read_text()
    card = ModelCard(text)
    data = card.data
    assert data.library_name == "avb-zoo" and data.license == "mit" and data.datasets == ["ylecun/mnist"]
    assert "vae" in data.tags
    results = {r.metric_type: r for r in data.eval_results}
    for key in ("log_likelihood", "reconstruction_error", "elbo", "iw_bound"):
        assert results[key].metric_value == METRICS[key]
    ais = results["log_likelihood"]
    assert ais.metric_args["steps"] == 1000 and ais.metric_args["chains"] == 5 and ais.metric_config == "ais"
    assert "AIS" in ais.metric_name and "bound" in results["elbo"].metric_name
    assert "![samples from the prior](samples.png)" in text
    assert "avb-zoo train me/card-v1 --out runs/card" in text and "Device: cpu" in text
    assert 'ort.InferenceSession("onnx/sampler.onnx")' not in text  # no graphs pushed: no onnxruntime snippet
    assert 'Sampler("hf-hub:me/card")' not in text  # nor the runtime, which needs the graphs
    assert 'AVBModel.from_pretrained("me/card")' in text and "serves torch only" in text


def test_an_avb_estimate_is_named_an_estimate() -> None:
    config = {**SMALL, "method": "avb", "adversary": {"name": "residual"}}
    text = render_model_card(config, {"elbo_estimate": -90.0, "log_likelihood": -91.0}, "me/avb", {})
    results = {r.metric_type: r for r in ModelCard(text).data.eval_results}
    assert "an estimate, not a bound" in results["elbo_estimate"].metric_name
    assert results["elbo_estimate"].metric_value == -90.0


def test_train_records_its_command_device_and_time(tmp_path: Path) -> None:
    from avb_zoo.cli import main
    from click.testing import CliRunner

    from avb_zoo.modelfile.provenance import read_training_record

    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["train", "toy-avb", "--out", str(out), "--max-steps", "2", "--quiet"])
    assert result.exit_code == 0, result.output
    record = read_training_record(out)
    assert record["command"].startswith(f"avb-zoo train toy-avb --out {out}") and "--max-steps 2" in record["command"]
    assert record["device"] == "cpu" and record["steps"] == 2 and record["seconds"] >= 0


def test_the_card_says_the_precision_and_threads_a_model_was_trained_with() -> None:
    training = {
        "command": "avb-zoo train me/m-v1 --precision bf16",
        "device": "cpu",
        "machine": "Linux x86_64",
        "seconds": 10.0,
        "steps": 5,
        "precision": "bf16",
        "threads": 2,
        "threads_source": "2 (auto: other programs kept 0.0 of 2 physical cores busy)",
    }
    text = render_model_card(SMALL, {}, "me/m", {}, training=training)
    assert "Arithmetic: bf16 matrix products; 2 thread(s), 2 (auto: other programs kept 0.0 of 2" in text
    older = {k: v for k, v in training.items() if k not in ("precision", "threads", "threads_source")}
    assert "Arithmetic:" not in render_model_card(SMALL, {}, "me/m", {}, training=older)  # older records: no line
