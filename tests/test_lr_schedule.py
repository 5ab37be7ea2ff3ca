"""The learning-rate schedule: its arithmetic, the recipe's checks, and that every engine follows it."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import torch
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

from avb_zoo.catalogue.recipes import TrainSettings, find_recipe
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.errors import ConfigError
from avb_zoo.training.batches import make_batch_source
from avb_zoo.training.checkpoint import STATE_FILE
from avb_zoo.training.fast_step import FastStep, HostInputs
from avb_zoo.training.schedule import lr_factor, lr_factor_tensor
from avb_zoo.training.seeds import seed_folder, train_seeds
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model, train

STEPS = 20
TOLERANCE = 1e-9  # float64 runs of the same arithmetic in another order


def settings(schedule: str, start: float = 0.0, steps: int = 100) -> TrainSettings:
    return TrainSettings(
        data="toy", batch_size=8, steps=steps, lr_primal=1e-3, lr_schedule=schedule, lr_decay_start=start
    )


def test_the_factor_is_one_until_the_decay_then_falls_to_zero():
    linear, cosine = settings("linear", 0.5), settings("cosine", 0.5)
    assert [lr_factor(linear, s) for s in (0, 49, 50, 75, 100, 150)] == [1.0, 1.0, 1.0, 0.5, 0.0, 0.0]
    assert lr_factor(cosine, 75) == pytest.approx(0.5, abs=1e-15)
    assert lr_factor(cosine, 60) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)), abs=1e-15)
    assert all(lr_factor(settings("constant"), s) == 1.0 for s in (0, 99, 1000))
    assert lr_factor_tensor(settings("constant"), torch.tensor(5)) is None


@pytest.mark.parametrize(("schedule", "start"), [("linear", 0.0), ("linear", 0.3), ("cosine", 0.0), ("cosine", 0.7)])
def test_the_device_factor_equals_the_host_factor(schedule, start):
    chosen = settings(schedule, start, steps=37)
    for step in range(45):
        on_device = float(lr_factor_tensor(chosen, torch.tensor(step, dtype=torch.int64)))
        assert on_device == pytest.approx(lr_factor(chosen, step), abs=1e-15)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("lr_schedule", "step", "train.lr_schedule = 'step'; choose one of"), ("lr_decay_start", 1.0, "in [0, 1)")],
)
def test_a_bad_schedule_is_refused_naming_the_field(field, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainSettings.from_mapping({"data": "toy", "batch_size": 8, "steps": 10, "lr_primal": 1e-3, field: value}, "r")


def scheduled_toy(schedule: str = "linear", start: float = 0.25):
    recipe = find_recipe("toy-avb")  # two adversary updates per step: the extra updates follow the schedule too
    train_settings = dataclasses.replace(recipe.train, steps=STEPS, lr_schedule=schedule, lr_decay_start=start)
    return dataclasses.replace(recipe, train=train_settings)


def state_difference(a: Path, b: Path) -> float:
    ta, tb = read_safetensors(a / STATE_FILE)[0], read_safetensors(b / STATE_FILE)[0]
    assert ta.keys() == tb.keys()
    return max(float((ta[k].double() - tb[k].double()).abs().max()) for k in ta)


KWARGS = dict(dtype="float64", progress=False, batch_size=32, checkpoint_every=10)


def test_every_path_follows_the_schedule_and_it_changes_the_run(tmp_path):
    """Eager, a resumed run (its restored optimisers hold an older learning rate) and a stacked run end in
    the same state; the constant schedule's run does not."""
    recipe = scheduled_toy()
    train(recipe, tmp_path / "eager", seed=3, **KWARGS)
    train(recipe, tmp_path / "resumed", seed=3, max_steps=10, **KWARGS)
    train(recipe, tmp_path / "resumed", seed=3, resume=True, **KWARGS)
    train_seeds(recipe, tmp_path / "stack", [3, 4], **KWARGS)
    train(scheduled_toy("constant"), tmp_path / "constant", seed=3, **KWARGS)
    for other in ("resumed", seed_folder(tmp_path / "stack", 3)):
        assert state_difference(tmp_path / "eager", tmp_path / other) <= TOLERANCE
    assert state_difference(tmp_path / "eager", tmp_path / "constant") > 1e-4


def test_the_fast_step_follows_the_schedule():
    """The fast step's program (what the compiled and graphs engines run) computes the factor from its step
    tensor: 20 steps equal train_step's, float64."""
    recipe = scheduled_toy("cosine", 0.1)
    chosen = dataclasses.replace(recipe.train, batch_size=32)
    source = make_batch_source(chosen.data, None)
    ref = init_model(recipe, 3).double().train()
    ref_opt = make_optimizers(ref, chosen)
    fast = init_model(recipe, 3).double().train()
    fast_step = FastStep(fast, make_optimizers(fast, chosen), chosen, 0)
    inputs = HostInputs(fast, source, chosen, 3)
    for step in range(STEPS):
        train_step(ref, ref_opt, source.batch(3, step, chosen.batch_size).double(), 3, step, chosen)
        fast_step.program(inputs(step))
    a, b = dict(ref.named_parameters()), dict(fast.named_parameters())
    assert max(float((a[k] - b[k]).abs().max()) for k in a) <= TOLERANCE
