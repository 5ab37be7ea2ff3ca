"""``avb-zoo eval`` and the evaluation library: metrics, protocol record, keyed data, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from toy_fixtures import single_thread, toy_vae_copy, trained_toy_vae  # noqa: F401

from avb_zoo.catalogue.recipes import TrainSettings
from avb_zoo.errors import CheckpointError, ConfigError, DataError, EvaluationError
from avb_zoo.evaluation.ais import AISSettings
from avb_zoo.evaluation.data import load_test_set
from avb_zoo.evaluation.evaluate import EvalSettings, evaluate, evaluate_folder, mean_and_se
from avb_zoo.evaluation.metrics import adversary_kl, elbo_terms
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import ADVERSARY_FILE, CONFIG_FILE, WEIGHTS_FILE, save
from avb_zoo.training.step import make_optimizers

MNIST_SUBSET = Path(__file__).parent / "data" / "mnist-subset"
FAST = ["--ais-steps", "20", "--ais-chains", "4", "--iw-samples", "50"]

SMALL_MNIST_AC = {
    "method": "avb-ac",
    "x_dim": 784,
    "latent_dim": 4,
    "image_shape": [1, 28, 28],
    "data": {"name": "mnist"},
    "encoder": {"name": "noise-basis", "eps_dim": 4, "n_basis": 3, "hidden": [16], "basis_hidden": [8]},
    "decoder": {"name": "bernoulli", "hidden": [16]},
    "adversary": {"name": "inner-product", "hidden": [16], "feature_dim": 8},
}
EIGHT_SCHOOLS = {
    "method": "avb-ac",
    "x_dim": 0,
    "latent_dim": 10,
    "data": {"name": "eight-schools"},
    "encoder": {"name": "concat-mlp", "noise_dim": 10, "hidden": [16]},
    "decoder": {"name": "eight-schools"},
    "adversary": {"name": "residual", "width": 16, "blocks": 1},
}


def saved(config: dict, folder: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    save(AVBModel(config), folder)
    return folder


def run(*args: str) -> tuple[int, str]:
    from avb_zoo.cli import main  # cli.py lives beside the package in a checkout

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


def test_toy_eval_json_agrees_with_quadrature_and_is_written(toy_vae_copy: Path) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, "--ais-steps", "100", "--ais-chains", "64", "--json")
    assert code == 0, out
    result = json.loads(out)
    for key in ("log_likelihood", "log_likelihood_mc_se", "log_likelihood_spread_se", "elbo", "protocol"):
        assert key in result
    assert not any(k.endswith("_se") and not k.endswith(("_mc_se", "_spread_se")) for k in result)
    assert 0 < result["log_likelihood_mc_se"] < 0.02  # 64 chains: the AIS noise of the mean is small
    assert json.loads((toy_vae_copy / "metrics.json").read_text()) == result
    # AIS from the encoder's Gaussian, 64 chains: per-point spread ~0.01 (see test_ais), so 0.02 on the mean.
    assert abs(result["log_likelihood"] - result["exact_log_likelihood"]) < 0.02
    # Bounds: the IW bound (1000 samples) and the ELBO lie below log p(x); their sampling error is far
    # below the margins used (IW: ~0.003; ELBO: 25,600 draws, s.e. printed ~0.04 over 4 points).
    assert result["iw_bound"] < result["exact_log_likelihood"] + 0.01
    assert result["elbo"] < result["iw_bound"]
    assert result["elbo_kind"].startswith("bound")
    assert math.isclose(result["elbo"], -(result["reconstruction_error"] + result["kl"]), rel_tol=1e-6)
    protocol = result["protocol"]
    assert protocol["ais"]["steps"] == 100 and protocol["ais"]["chains"] == 64
    assert protocol["ais"]["leapfrog_steps"] == 10 and protocol["ais"]["schedule"] == "linear"
    assert protocol["data"]["name"] == "toy" and protocol["n_test"] == 4 and protocol["seed"] == 0
    assert "encoder's Gaussian" in protocol["ais"]["q0"]
    assert protocol["ais"]["step_size_schedule"].startswith("step sizes from a pilot run on separate noise, frozen")
    assert protocol["ais"]["pilot_chains"] == 1 and protocol["ais"]["pilot_steps"] == 100


def test_table_output(toy_vae_copy: Path) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST, "--no-write")
    assert code == 0, out
    assert "log p(x), AIS" in out and "exact (quadrature)" in out and "ELBO (bound)" in out
    assert not (toy_vae_copy / "metrics.json").exists()


def test_threads_are_recorded_in_the_protocol(toy_vae_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from avb_zoo.evaluation.evaluate import comparable
    from avb_zoo.evaluation.protocol import check_protocol

    code, out = run("eval", toy_vae_copy, *FAST, "--threads", "1")
    assert code == 0, out
    metrics = json.loads((toy_vae_copy / "metrics.json").read_text())
    assert check_protocol(metrics)["threads"] == 1
    assert metrics["protocol"]["threads_source"] == "1 (--threads)"
    assert not {"threads", "threads_source"} & set(comparable(metrics)["protocol"])
    # the library, without --threads or a thread variable: one thread for the toy's tiny decoder, and torch's
    # own count back afterwards
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(2)
    settings = EvalSettings(ais=AISSettings(steps=10, chains=3), iw_samples=20)
    protocol = evaluate(load(toy_vae_copy), settings)["protocol"]
    assert (protocol["threads"], protocol["threads_source"]) == (1, "1 (auto: products too small to split)")
    assert torch.get_num_threads() == 2
    with pytest.raises(ConfigError, match="--threads must be a whole number"):
        evaluate(load(toy_vae_copy), EvalSettings(threads=0))


def test_results_do_not_depend_on_batch_size(trained_toy_vae) -> None:  # noqa: F811
    def metrics(batch_size: int) -> dict:
        settings = EvalSettings(ais=AISSettings(steps=10, chains=3), batch_size=batch_size, iw_samples=20)
        return evaluate(trained_toy_vae, settings)

    one, all_four = metrics(1), metrics(4)
    for key in ("log_likelihood", "elbo", "reconstruction_error", "iw_bound", "exact_log_likelihood"):
        assert math.isclose(one[key], all_four[key], rel_tol=1e-5, abs_tol=1e-6), key


def test_avb_ac_on_mnist_subset(tmp_path: Path) -> None:
    folder = saved(SMALL_MNIST_AC, tmp_path / "ac")
    args = ["--n-test", "6", "--batch-size", "4", "--data-dir", MNIST_SUBSET, "--json"]
    code, out = run("eval", folder, *FAST, *args)
    assert code == 0, out
    result = json.loads(out)
    assert result["elbo_kind"].startswith("estimate") and "elbo" not in result and "kl" not in result
    assert all(
        math.isfinite(result[k]) for k in ("log_likelihood", "elbo_estimate", "reconstruction_error", "kl_estimate")
    )
    assert "exact_log_likelihood" not in result and "iw_bound" not in result
    assert "Adaptive Contrast" in result["protocol"]["ais"]["q0"] or "AC moments" in result["protocol"]["ais"]["q0"]
    data = result["protocol"]["data"]
    assert data["split"].startswith("test") and "dynamic" in data["binarization"]
    # A 784-pixel image under an untrained decoder costs ~784 log 2 = 543 nats; AIS can only do better.
    assert -600 < result["log_likelihood"] < 0


def test_avb_without_adversary_weights_has_no_elbo(tmp_path: Path) -> None:
    folder = saved(SMALL_MNIST_AC, tmp_path / "ac")
    (folder / ADVERSARY_FILE).unlink()
    settings = EvalSettings(ais=AISSettings(steps=3, chains=2), n_test=2, data_dir=str(MNIST_SUBSET))
    result, _ = evaluate_folder(folder, settings, write=False)
    assert result["elbo_estimate"] is None and result["elbo_kind"].startswith("unavailable")
    assert "adversary.safetensors" in result["elbo_kind"]
    assert math.isfinite(result["reconstruction_error"])
    model = load(folder)
    assert model.adversary is None  # not a randomly initialised one
    with pytest.raises(ConfigError, match="needs the adversary, and this model has none"):
        adversary_kl(model, torch.zeros(1, 784), torch.zeros(1, model.latent_dim), 0)
    with pytest.raises(ConfigError, match="training an AVB model needs the adversary"):
        make_optimizers(model, TrainSettings(data="mnist", batch_size=4, steps=1, lr_primal=1e-3))
    code, out = run("eval", folder, *FAST, "--n-test", "2", "--data-dir", MNIST_SUBSET, "--no-write")
    assert code == 0 and "ELBO estimate unavailable: the model has no adversary" in out, out


def test_eight_schools_gives_a_log_evidence(tmp_path: Path) -> None:
    folder = saved(EIGHT_SCHOOLS, tmp_path / "es")
    code, out = run("eval", folder, *FAST, "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["protocol"]["n_test"] == 1 and result["log_likelihood_spread_se"] is None
    assert math.isfinite(result["log_likelihood"])


def test_mnist_binarisation_is_keyed_by_example() -> None:
    config = dict(SMALL_MNIST_AC)
    five = load_test_set(config, 5, seed=1, data_dir=MNIST_SUBSET)
    three = load_test_set(config, 3, seed=1, data_dir=MNIST_SUBSET)
    assert torch.equal(five.x[:3], three.x)
    assert set(five.x.unique().tolist()) <= {0.0, 1.0}
    other = load_test_set(config, 5, seed=2, data_dir=MNIST_SUBSET)
    assert not torch.equal(other.x, five.x)


def test_mnist_test_images_are_a_seeded_random_subset() -> None:
    from avb_zoo.data.mnist import load_mnist

    images = load_mnist(MNIST_SUBSET, "test")
    total = images.shape[0]
    five = load_test_set(SMALL_MNIST_AC, 5, seed=1, data_dir=MNIST_SUBSET)
    assert len(set(five.indices)) == 5 and all(0 <= i < total for i in five.indices)
    assert five.indices != list(range(5))  # not the file's first images (the file is ordered)
    assert load_test_set(SMALL_MNIST_AC, 5, seed=1, data_dir=MNIST_SUBSET).indices == five.indices
    assert load_test_set(SMALL_MNIST_AC, 5, seed=2, data_dir=MNIST_SUBSET).indices != five.indices
    assert load_test_set(SMALL_MNIST_AC, 3, seed=1, data_dir=MNIST_SUBSET).indices == five.indices[:3]
    everything = load_test_set(SMALL_MNIST_AC, total, seed=1, data_dir=MNIST_SUBSET)
    assert sorted(everything.indices) == list(range(total))
    # each example is the image at its index, binarised: its on-pixels are among the image's non-zero ones
    for row, idx in zip(five.x, five.indices, strict=True):
        assert ((row > 0) <= (images[idx].flatten() > 0)).all()
    assert "at random" in five.description["indices"] and "seed 1" in five.description["indices"]


def test_elbo_terms_average_their_draws(trained_toy_vae) -> None:  # noqa: F811
    x = torch.eye(4)
    many = elbo_terms(trained_toy_vae, x, [0, 1, 2, 3], seed=0, samples=2000)
    few = elbo_terms(trained_toy_vae, x, [0, 1, 2, 3], seed=0, samples=1)
    torch.testing.assert_close(many["kl"], few["kl"])  # analytic for the VAE
    assert (many["reconstruction_error"] > 0).all()


def test_mean_and_se() -> None:
    mean, se = mean_and_se(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert mean == 2.5 and math.isclose(se, math.sqrt(5 / 3) / 2)
    assert mean_and_se(torch.tensor([3.0])) == (3.0, None)


# ------------------------------------------------------------------------------------------- bad input
def test_folder_without_weights(toy_vae_copy: Path) -> None:  # noqa: F811
    (toy_vae_copy / WEIGHTS_FILE).unlink()
    code, out = run("eval", toy_vae_copy, *FAST)
    assert code == 1 and WEIGHTS_FILE in out and "Traceback" not in out


def test_not_a_folder(tmp_path: Path) -> None:
    code, out = run("eval", tmp_path / "nowhere", *FAST)
    assert code == 1 and "not a model folder" in out


def test_config_and_weights_that_disagree(toy_vae_copy: Path) -> None:  # noqa: F811
    config = json.loads((toy_vae_copy / CONFIG_FILE).read_text())
    config["decoder"]["hidden"] = [32, 32, 32]
    (toy_vae_copy / CONFIG_FILE).write_text(json.dumps(config))
    code, out = run("eval", toy_vae_copy, *FAST)
    assert code == 1 and "does not match" in out


@pytest.mark.parametrize(
    ("option", "value"),
    [("--ais-chains", "0"), ("--ais-steps", "-5"), ("--batch-size", "0"), ("--n-test", "0")],
)
def test_settings_out_of_range_on_the_command_line(toy_vae_copy: Path, option: str, value: str) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, option, value)
    assert code != 0 and option in out
    assert not (toy_vae_copy / "metrics.json").exists()


@pytest.mark.parametrize(
    ("options", "word"),
    [
        (["--ais-steps", "1"], "AIS steps"),
        (["--ais-steps", "10", "--ais-pilot-steps", "20"], "AIS pilot steps"),
        (["--ais-pilot-chains", "0"], "AIS pilot chains"),
    ],
)
def test_ais_settings_without_a_valid_estimate(toy_vae_copy: Path, options: list[str], word: str) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST[2:], *options)
    assert code == 1 and word in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out
    assert not (toy_vae_copy / "metrics.json").exists()


def test_non_finite_start_moments(toy_vae_copy: Path) -> None:  # noqa: F811
    from avb_zoo.modelling.factory import load

    model = load(toy_vae_copy)
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.fill_(float("nan"))
    save(model, toy_vae_copy)
    code, out = run("eval", toy_vae_copy, *FAST)  # NaN weights are refused when loaded, naming the tensor
    assert code == 1 and "holds" in out and "NaN or infinite" in out and "Traceback" not in out
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.fill_(1e30)  # finite weights whose moments overflow
    save(model, toy_vae_copy)
    code, out = run("eval", toy_vae_copy, *FAST)
    assert code == 1 and "start distribution q0" in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1, out
    assert not (toy_vae_copy / "metrics.json").exists()


def test_too_many_toy_examples(toy_vae_copy: Path) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST, "--n-test", "5")
    assert code == 1 and "4 points" in out


def test_settings_validated_in_the_library(trained_toy_vae) -> None:  # noqa: F811
    with pytest.raises(EvaluationError, match="chains"):
        evaluate(trained_toy_vae, EvalSettings(ais=AISSettings(chains=0)))
    with pytest.raises(EvaluationError, match="batch size"):
        evaluate(trained_toy_vae, EvalSettings(batch_size=-1))


def test_nan_in_data_is_named(trained_toy_vae) -> None:  # noqa: F811
    data = torch.eye(4)
    data[2, 1] = float("nan")
    with pytest.raises(DataError, match="NaN"):
        evaluate(trained_toy_vae, EvalSettings(ais=AISSettings(steps=2, chains=1)), data=data)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        evaluate(trained_toy_vae, EvalSettings(ais=AISSettings(steps=2, chains=1)), data=torch.eye(4) * 3)


def test_missing_mnist_is_a_data_error(tmp_path: Path) -> None:
    folder = saved(SMALL_MNIST_AC, tmp_path / "ac")
    with pytest.raises(DataError, match="MNIST"):
        evaluate_folder(folder, EvalSettings(n_test=2, data_dir=str(tmp_path / "empty")), write=False)


def test_unknown_device(toy_vae_copy: Path) -> None:  # noqa: F811
    code, out = run("eval", toy_vae_copy, *FAST, "--device", "tpu9")
    assert code == 1 and "device" in out


def test_resolve_rejects_folder_without_config(tmp_path: Path) -> None:
    from avb_zoo.evaluation.evaluate import resolve_model_folder

    with pytest.raises(CheckpointError, match=CONFIG_FILE):
        resolve_model_folder(tmp_path)


def test_a_zoo_id_is_evaluated_but_its_folder_left_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avb_zoo.catalogue.registry import spec

    shipped = spec("toy-avb").local_dir
    if shipped is None:
        pytest.skip("the catalogue ships no toy-avb weights")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no network: the shipped copy serves
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    before = {p.name: p.stat().st_mtime_ns for p in Path(shipped).iterdir()}
    code, out = run("eval", "toy-avb", *FAST, "--json")
    assert code == 0, out
    assert json.loads(out)["model"]["method"] == "avb"
    assert {p.name: p.stat().st_mtime_ns for p in Path(shipped).iterdir()} == before
