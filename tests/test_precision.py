"""``--precision bf16``: matrix products in bf16, everything a loss is made of in float32, refused where it
cannot run, and a run resumes only in the precision it started with."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from avb_zoo.cli import main
from click.testing import CliRunner
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.precision import CPU_FLAGS_ENV, autocast, check_precision, cpu_has_bf16
from avb_zoo.errors import CheckpointError, ConfigError
from avb_zoo.modelling.objectives import avb_primal_terms
from avb_zoo.training.step import compute_losses
from avb_zoo.training.trainer import init_model, train

SUBSET = Path(__file__).resolve().parent / "data" / "mnist-subset"
NATIVE = "fpu sse2 avx2 avx512f avx512_bf16"
EMULATED = "fpu sse2 avx2 avx512f"


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_bf16_support_follows_the_processor_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, NATIVE)
    assert cpu_has_bf16()
    assert check_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv(CPU_FLAGS_ENV, EMULATED)
    assert not cpu_has_bf16()
    with pytest.raises(ConfigError, match="native bf16"):
        check_precision("bf16", "cpu")
    assert check_precision("float32", "cpu") == "float32"  # float32 needs nothing


@pytest.mark.parametrize(
    ("args", "flags", "message"),
    [
        (["--precision", "fp8"], NATIVE, "unknown precision 'fp8'"),
        (["--precision", "bf16"], EMULATED, "--precision bf16 needs a CPU with native bf16"),
        (["--precision", "bf16", "--dtype", "float64"], NATIVE, "cannot be combined with --dtype float64"),
    ],
)
def test_a_precision_that_cannot_run_is_one_line_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], flags: str, message: str
) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, flags)
    out = tmp_path / "run"
    result = _cli("train", "toy-avb", "--out", out, "--max-steps", 2, "--quiet", *args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_a_resume_in_another_precision_is_refused_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, NATIVE)
    out = tmp_path / "run"
    train("toy-avb", out, max_steps=2, checkpoint_every=1, progress=False)
    before = _files(out)
    with pytest.raises(CheckpointError, match="precision 'float32' \\(asked 'bf16'\\)"):
        train("toy-avb", out, max_steps=4, resume=True, precision="bf16", progress=False)
    result = _cli("train", "toy-avb", "--out", out, "--max-steps", 4, "--resume", "--precision", "bf16", "--quiet")
    assert result.exit_code == 1 and "precision 'float32' (asked 'bf16')" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert _files(out) == before


def test_under_bf16_products_are_bf16_and_every_loss_input_is_float32() -> None:
    recipe = find_recipe("mnist-avb-ac-v1")
    model = init_model(recipe, 0)
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(8, 784, generator=g) < 0.3).float()
    eps = model.sample_noise(8, g)
    with autocast("cpu", "bf16"):
        assert model.decoder.forward(torch.zeros(8, 32)).dtype == torch.bfloat16  # the products did run in bf16
        z_view, correction, rec = avb_primal_terms(model.encoder, model.decoder, True, x, eps)
        t = model.adversary(x, z_view)
    for value in (z_view, correction, rec, t):
        assert value.dtype == torch.float32


def test_bf16_losses_are_float32_losses_to_bf16_rounding() -> None:
    """The first step's losses (same parameters, same draws) in bf16 and float32.

    bf16 keeps 8 significant bits: each rounding of a product's inputs moves it by at most 2^-9 relative.
    A value passes through at most five such products on its way to a loss (encoder, decoder, adversary
    layers feed each other but the losses average over the batch), so 5 * 2^-9 ~ 1% relative bounds the
    first-order error; the check allows 2%.
    """
    from avb_zoo.compute.distributed import World
    from avb_zoo.training.players import make_players

    recipe = find_recipe("mnist-avb-ac-v1")
    model = init_model(recipe, 0)
    x = (torch.rand(64, 784, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    players = make_players(model, World())
    full = compute_losses(model, players, x, 0, 0, recipe.train)
    with autocast("cpu", "bf16"):
        half = compute_losses(model, players, x, 0, 0, recipe.train)
    for a, b in ((full.primal, half.primal), (full.rec.mean(), half.rec.mean()), (full.kl.mean(), half.kl.mean())):
        assert a.dtype == b.dtype == torch.float32
        assert abs(float(b) - float(a)) <= 0.02 * abs(float(a)), (float(a), float(b))
    assert not torch.equal(full.rec, half.rec)  # bf16 did change the products


def test_training_json_and_the_result_record_precision_and_threads(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _cli("train", "toy-avb", "--out", out, "--max-steps", 2, "--threads", 1, "--quiet", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    record = json.loads((out / "training.json").read_text())
    for data in (summary, record):
        assert data["precision"] == "float32"
        assert data["threads"] == 1
        assert data["threads_source"] == "1 (--threads)"


def _toy_preferring_bf16():
    from dataclasses import replace

    recipe = find_recipe("toy-avb")
    return replace(recipe, train=replace(recipe.train, precision="bf16"))


def test_a_recipe_that_prefers_bf16_trains_in_it_where_it_can(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, NATIVE)
    result = train(_toy_preferring_bf16(), tmp_path / "run", max_steps=2, progress=False)
    assert result.precision == "bf16"
    resumed = train(_toy_preferring_bf16(), tmp_path / "run", max_steps=3, resume=True, progress=False)
    assert resumed.precision == "bf16" and resumed.step == 3
    forced = train(_toy_preferring_bf16(), tmp_path / "f32", max_steps=2, precision="float32", progress=False)
    assert forced.precision == "float32"


def test_a_recipe_that_prefers_bf16_falls_back_to_float32_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, EMULATED)
    with pytest.warns(UserWarning, match="trains in bf16 where it can; here float32"):
        result = train(_toy_preferring_bf16(), tmp_path / "run", max_steps=2, progress=False)
    assert result.precision == "float32"
    with pytest.raises(ConfigError, match="native bf16"):  # asked for explicitly: refused, not replaced
        train(_toy_preferring_bf16(), tmp_path / "other", max_steps=2, precision="bf16", progress=False)
    assert not (tmp_path / "other").exists()


def test_a_resume_without_precision_keeps_the_checkpoints(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CPU_FLAGS_ENV, NATIVE)
    train("toy-avb", tmp_path / "run", max_steps=2, precision="bf16", progress=False)
    resumed = train("toy-avb", tmp_path / "run", max_steps=3, resume=True, progress=False)  # the recipe says float32
    assert resumed.precision == "bf16"


def test_a_recipe_precision_is_checked() -> None:
    from avb_zoo.catalogue.recipes import TrainSettings

    with pytest.raises(ConfigError, match="train.precision = 'fp16'"):
        TrainSettings.from_mapping(
            {"data": "toy", "batch_size": 4, "steps": 1, "lr_primal": 1e-3, "precision": "fp16"}, "x"
        )
