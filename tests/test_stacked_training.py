"""Several seeds trained as one stacked model: each seed's folder holds what its solo run would hold
(parameters and Adam state within float64 rounding), resumes like one, and a model that diverges stops
alone."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from budget import budget
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

import avb_zoo.training.stacked as stacked_module
from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.weights import WEIGHTS_FILE
from avb_zoo.training.checkpoint import STATE_FILE, read_run_info
from avb_zoo.training.seeds import parse_seeds, seed_folder, train_seeds
from avb_zoo.training.trainer import train

MNIST_SUBSET = Path(__file__).parent / "data" / "mnist-subset"
STEPS = 20
TOLERANCE = 1e-9


# a transposed-conv decoder (the authors' conv1 shape, made small), so stacking covers deconvolutions too
SMALL_DECONV_DECODER = {
    "name": "bernoulli",
    "hidden": [32],
    "start_shape": [8, 4, 4],
    "channels": [8, 4],
    "strides": [2, 2, 2],
    "act": "softplus",
}


def small_avb_ac():
    """mnist-avb-ac's architecture (convs, noise basis, Adaptive Contrast, inner-product adversary) made small,
    with two adversary updates per step."""
    recipe = find_recipe("mnist-avb-ac-v1")
    model = {
        **recipe.model,
        "encoder": {**recipe.model["encoder"], "eps_dim": 8, "n_basis": 4, "channels": [4, 8, 8], "hidden": [32]},
        "decoder": SMALL_DECONV_DECODER,
        "adversary": {**recipe.model["adversary"], "hidden": [32, 32], "feature_dim": 32},
    }
    model["encoder"]["basis_hidden"] = [16, 16]
    settings = dataclasses.replace(
        recipe.train, batch_size=16, adversary_steps=2, checkpoint_every=10, precision="float32"
    )  # float32: the recipe's bf16 would make "equal to the solo run" a question of bf16 rounding
    return dataclasses.replace(recipe, model=model, train=settings)


def small_vae():
    recipe = find_recipe("mnist-vae-v1")
    model = {
        **recipe.model,
        "encoder": {**recipe.model["encoder"], "channels": [4, 8, 8], "hidden": [32]},
        "decoder": SMALL_DECONV_DECODER,
    }
    return dataclasses.replace(recipe, model=model, train=dataclasses.replace(recipe.train, batch_size=16))


def max_state_difference(a: Path, b: Path) -> float:
    """Max abs difference over every tensor of two training states (parameters, buffers, Adam moments, steps)."""
    ta, meta_a = read_safetensors(a / STATE_FILE)
    tb, meta_b = read_safetensors(b / STATE_FILE)
    assert ta.keys() == tb.keys()
    assert meta_a == meta_b
    assert any(k.endswith(".exp_avg_sq") for k in ta)
    return max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta)


def solo(recipe, folder: Path, seed: int, steps: int = STEPS, **kwargs) -> Path:
    kwargs.setdefault("data_dir", MNIST_SUBSET)
    train(recipe, folder, max_steps=steps, seed=seed, dtype="float64", progress=False, checkpoint_every=10, **kwargs)
    return folder


@pytest.mark.parametrize(
    ("make", "seeds"),
    [(small_avb_ac, [0, 5, 2]), (small_vae, [1, 4]), (small_avb_ac, [7])],
    ids=["avb-ac", "vae", "k1"],
)
def test_each_stacked_model_equals_its_solo_run(tmp_path, make, seeds):
    recipe = make()
    done = train_seeds(
        recipe, tmp_path / "stack", seeds, max_steps=STEPS, dtype="float64", progress=False, data_dir=MNIST_SUBSET
    )
    assert not done.diverged and sorted(done.runs) == sorted(seeds)
    differences = []
    for s in seeds:
        folder = seed_folder(tmp_path / "stack", s)
        assert read_run_info(folder).step == STEPS and read_run_info(folder).seed == s
        differences.append(max_state_difference(folder, solo(recipe, tmp_path / f"solo-{s}", s)))
    print(f"\n{recipe.id} seeds {seeds}, {STEPS} steps, float64: max |stacked - solo| = {max(differences):.3g}")
    assert max(differences) <= TOLERANCE
    a = read_safetensors(seed_folder(tmp_path / "stack", seeds[0]) / WEIGHTS_FILE)[0]
    b = read_safetensors(tmp_path / f"solo-{seeds[0]}" / WEIGHTS_FILE)[0]
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= TOLERANCE


def test_a_stacked_run_resumes_and_a_seed_folder_resumes_alone(tmp_path):
    recipe = find_recipe("toy-avb")  # two adversary updates per step
    kwargs = dict(dtype="float64", progress=False, batch_size=32, checkpoint_every=10)
    train_seeds(recipe, tmp_path / "stack", [0, 3], max_steps=10, **kwargs)
    train_seeds(recipe, tmp_path / "stack", [0, 3], max_steps=STEPS, resume=True, **kwargs)
    train(recipe, seed_folder(tmp_path / "stack", 3), seed=3, max_steps=30, resume=True, **kwargs)  # solo resume
    for s, steps in ((0, STEPS), (3, 30)):
        reference = tmp_path / f"solo-{s}"
        train(recipe, reference, seed=s, max_steps=steps, **kwargs)
        assert max_state_difference(seed_folder(tmp_path / "stack", s), reference) <= TOLERANCE
    assert load(seed_folder(tmp_path / "stack", 0)).method == "avb"


def test_a_diverging_model_stops_alone_and_keeps_its_last_good_checkpoint(tmp_path, monkeypatch):
    draw = stacked_module.draw_noise

    def poisoned(model, seed, step, batch_size, sub=0):
        eps, z_contrast, moment = draw(model, seed, step, batch_size, sub)
        return (eps * float("nan"), z_contrast, moment) if (seed, step) == (3, 14) else (eps, z_contrast, moment)

    monkeypatch.setattr(stacked_module, "draw_noise", poisoned)
    kwargs = dict(dtype="float64", progress=False, batch_size=32, checkpoint_every=10)
    done = train_seeds("toy-vae", tmp_path / "stack", [0, 3, 5], max_steps=STEPS, **kwargs)
    assert sorted(done.runs) == [0, 5] and list(done.diverged) == [3]
    assert "seed 3" in done.diverged[3] and "step 14" in done.diverged[3] and "(step 10)" in done.diverged[3]
    assert read_run_info(seed_folder(tmp_path / "stack", 3)).step == 10
    for s, steps in ((0, STEPS), (5, STEPS), (3, 10)):
        reference = train("toy-vae", tmp_path / f"solo-{s}", seed=s, max_steps=steps, **kwargs).out
        assert max_state_difference(seed_folder(tmp_path / "stack", s), reference) <= TOLERANCE


@pytest.mark.parametrize(
    ("text", "seeds"), [("0-3", [0, 1, 2, 3]), ("0,3,5", [0, 3, 5]), ("2-3,7", [2, 3, 7]), ("4", [4])]
)
def test_seed_lists(text, seeds):
    assert parse_seeds(text) == seeds


def run_cli(*args: object) -> subprocess.CompletedProcess:
    command = [sys.executable, "-c", "from avb_zoo.cli import main; main()", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=budget(300))


def test_the_command_writes_one_run_folder_per_seed(tmp_path):
    out = tmp_path / "runs"
    done = run_cli("train", "toy-vae", "--out", out, "--seeds", "0-2", "--max-steps", 5, "--batch-size", 16, "--quiet")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["seed-0", "seed-1", "seed-2"]
    solo_run = run_cli(
        "train", "toy-vae", "--out", tmp_path / "solo", "--seed", 1, "--max-steps", 5, "--batch-size", 16
    )
    assert solo_run.returncode == 0, solo_run.stderr
    a = read_safetensors(out / "seed-1" / STATE_FILE)[0]
    b = read_safetensors(tmp_path / "solo" / STATE_FILE)[0]
    assert a.keys() == b.keys()
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= 1e-5  # float32: batched and single matmuls round apart


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "3-1"], "runs backwards"),
        (["--seeds", "x"], "write a range"),
        (["--seeds", "0-99"], "at most"),
        (["--seeds", "0-1", "--nproc", "2"], "--nproc"),
        (["--seeds", "0-1", "--seed", "4"], "either --seed or --seeds"),
        (["--seeds", "0-1", "--engine", "compiled"], "drop --engine"),
    ],
)
def test_bad_seed_requests_fail_with_one_line(tmp_path, args, message):
    done = run_cli("train", "toy-vae", "--out", tmp_path / "runs", "--max-steps", 1, *args)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_one_image_source_serves_several_seeds_in_any_order():
    """The epoch order is cached per seed: interleaving seeds (as a stacked run does) changes no batch."""
    from avb_zoo.training.batches import ImageBatches

    images = torch.rand(10, 4)
    shared, alone = ImageBatches(images), {s: ImageBatches(images) for s in (0, 1)}
    for step in range(12):  # batches of 3 cross epochs of 10 images
        for s in (0, 1):
            assert torch.equal(shared.batch(s, step, 3), alone[s].batch(s, step, 3))
