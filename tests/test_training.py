"""Training: a crashed or SIGKILLed run resumes to exactly the parameters and optimiser state of an uninterrupted
run; wrong resumes, divergence, bad data and unwritable folders fail clearly and leave good files alone."""

from __future__ import annotations

import copy
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from budget import budget
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

import avb_zoo.training.step as step_module
from avb_zoo.catalogue.recipes import find_recipe
from avb_zoo.compute.distributed import World
from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.errors import AVBZooError, CheckpointError, DataError, OutputError, TrainingDiverged
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.weights import ADVERSARY_FILE, WEIGHTS_FILE
from avb_zoo.training.checkpoint import STATE_FILE, read_run_info
from avb_zoo.training.players import make_players
from avb_zoo.training.step import compute_losses, make_optimizers, train_step
from avb_zoo.training.trainer import init_model, train

REPO = Path(__file__).resolve().parents[1]


class Crash(Exception):
    """Stands for a process dying mid-run (raised from on_step)."""


def _run(recipe: str, out: Path, steps: int, **kwargs):
    kwargs.setdefault("batch_size", 64)
    return train(recipe, out, max_steps=steps, checkpoint_every=10, seed=3, progress=False, **kwargs)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def assert_same_run(a: Path, b: Path) -> None:
    """Bit-for-bit the same training state (every parameter, buffer and Adam tensor) and the same model files."""
    for name in (STATE_FILE, WEIGHTS_FILE, ADVERSARY_FILE):
        if not (a / name).exists():
            assert not (b / name).exists(), name
            continue
        ta, meta_a = read_safetensors(a / name)
        tb, meta_b = read_safetensors(b / name)
        assert ta.keys() == tb.keys(), name
        different = [k for k in ta if not (ta[k].dtype == tb[k].dtype and torch.equal(ta[k], tb[k]))]
        assert not different, f"{name}: {different[:5]}"
        assert meta_a == meta_b, name
    state, _ = read_safetensors(a / STATE_FILE)
    assert any(k.startswith("optim.primal.") and k.endswith(".exp_avg_sq") for k in state)  # Adam state is compared


@pytest.mark.parametrize("recipe", ["toy-avb", "toy-vae"])
def test_crash_and_resume_equals_the_uninterrupted_run(tmp_path, recipe):
    """Crash at step 25 (last checkpoint 20), resume to 30: identical to a run that never stopped."""
    whole = _run(recipe, tmp_path / "whole", 30)
    assert whole.step == 30

    def crash_at_25(step, result):
        if step == 25:
            raise Crash

    with pytest.raises(Crash):
        _run(recipe, tmp_path / "crashed", 30, on_step=crash_at_25)
    assert read_run_info(tmp_path / "crashed").step == 20
    resumed = _run(recipe, tmp_path / "crashed", 30, resume=True)
    assert resumed.step == 30
    assert_same_run(tmp_path / "whole", tmp_path / "crashed")
    for key, value in whole.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    # and resuming an already finished run does nothing
    again = _run(recipe, tmp_path / "crashed", 30, resume=True)
    assert again.step == 30 and again.last is None
    assert_same_run(tmp_path / "whole", tmp_path / "crashed")


def _cli(*args: str, env: dict | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "avb_zoo.cli", *args],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def _step_on_disk(out: Path) -> int:
    try:
        return read_run_info(out).step
    except AVBZooError:  # not written yet
        return -1


@pytest.mark.parametrize(
    ("recipe", "batch_size"),
    [
        ("toy-avb", 64),
        pytest.param("toy-avb", None, marks=pytest.mark.slow),  # the recipe's batch of 512: ~20 s
        pytest.param("toy-vae", None, marks=pytest.mark.slow),
    ],
)
def test_sigkill_and_resume_equals_the_uninterrupted_run(tmp_path, recipe, batch_size):
    """`avb-zoo train` killed with SIGKILL once a checkpoint at step >= 20 is on disk, resumed with --resume."""
    out = tmp_path / "killed"
    args = ["train", recipe, "--max-steps", "60", "--checkpoint-every", "20", "--out", str(out), "--quiet"]
    if batch_size is not None:
        args += ["--batch-size", str(batch_size)]
    proc = _cli(*args)
    deadline = time.monotonic() + 300
    while _step_on_disk(out) < 20:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no checkpoint at step 20 within 300 s"
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL  # really killed, not finished
    killed_at = read_run_info(out).step
    assert killed_at in (20, 40)

    resumed = _cli(*args, "--resume")
    stdout, stderr = resumed.communicate(timeout=budget(300))
    assert resumed.returncode == 0, stderr
    assert "to step 60" in stdout
    whole = tmp_path / "whole"
    train(recipe, whole, max_steps=60, checkpoint_every=20, batch_size=batch_size, seed=0, progress=False)
    assert_same_run(whole, out)


def test_resume_must_match_the_run(tmp_path):
    out = tmp_path / "run"
    _run("toy-avb", out, 2)
    before = _files(out)
    cases = [
        (dict(recipe="toy-avb", resume=False), r"already holds a run; pass --resume"),
        (dict(recipe="toy-avb", seed=4), r"cannot resume .*: it was trained with seed 3 \(asked 4\)"),
        (dict(recipe="toy-vae"), r"recipe 'toy-avb-v1' \(asked 'toy-vae-v1'\)"),
        (dict(recipe="toy-avb", batch_size=32), r"batch size 64 \(asked 32\)"),
    ]
    for kwargs, message in cases:
        kwargs = {"resume": True, "seed": 3, "batch_size": 64, **kwargs}
        with pytest.raises(CheckpointError, match=message):
            train(kwargs.pop("recipe"), out, max_steps=4, progress=False, **kwargs)
        assert _files(out) == before  # the run is untouched
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train("toy-avb", tmp_path / "empty", max_steps=4, resume=True, progress=False)


def test_corrupt_training_state_is_a_checkpoint_error(tmp_path):
    out = tmp_path / "run"
    _run("toy-vae", out, 2)
    raw = (out / STATE_FILE).read_bytes()
    (out / STATE_FILE).write_bytes(raw[: len(raw) - 100])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        _run("toy-vae", out, 4, resume=True)


def _nan_at(monkeypatch, bad_step: int, finite_loss: bool) -> None:
    """Make step ``bad_step`` go wrong: a NaN loss, or a finite loss whose gradient is NaN."""
    real = step_module.compute_losses

    def patched(model, players, x, seed, step, settings, rows=None):
        losses = real(model, players, x, seed, step, settings, rows)
        if step == bad_step:
            if finite_loss:  # sqrt'(0) = inf times 0: the value stays finite, the gradient is NaN
                p = next(model.encoder.parameters())
                losses.primal = losses.primal + torch.sqrt(torch.zeros((), dtype=p.dtype) + 0 * p.sum())
            else:
                losses.primal = losses.primal * float("nan")
        return losses

    monkeypatch.setattr(step_module, "compute_losses", patched)


@pytest.mark.parametrize("finite_loss", [False, True], ids=["nan-loss", "nan-gradient"])
def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch, finite_loss):
    reference = _run("toy-avb", tmp_path / "reference", 10)
    assert reference.step == 10
    # the update of step index 19 is the last before the checkpoint at step 20: a NaN gradient there must not
    # reach the checkpoint (a NaN loss is caught before any update)
    _nan_at(monkeypatch, bad_step=19, finite_loss=finite_loss)
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match=r"non-finite .*the last good checkpoint \(step 10\) is kept") as err:
        _run("toy-avb", out, 30)
    assert ("by step 20" if finite_loss else "at step 19") in str(err.value)
    assert read_run_info(out).step == 10
    assert_same_run(tmp_path / "reference", out)  # the checkpoint on disk is the good state of step 10
    model = load(out)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_nan_in_user_data_is_rejected_up_front(tmp_path):
    images = torch.rand(32, 4)
    images[5, 2] = float("nan")
    with pytest.raises(DataError, match="NaN or infinite"):
        train("toy-avb", tmp_path / "run", data=images, max_steps=5, progress=False)
    assert not list((tmp_path / "run").glob("*"))
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        train("toy-avb", tmp_path / "run", data=images.nan_to_num(2.0), max_steps=5, progress=False)


def test_unwritable_output_folder(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="is not writable"):
        train("toy-avb", blocker / "run", max_steps=5, progress=False)
    assert blocker.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    if os.geteuid() != 0:  # permissions do not stop root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputError):
            train("toy-avb", locked / "run", max_steps=5, progress=False)
        assert not list(locked.iterdir())


def test_cli_errors_are_one_line_with_exit_1(tmp_path):
    proc = _cli("train", "nope")
    stdout, stderr = proc.communicate(timeout=budget(120))
    assert proc.returncode == 1
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1 and "'nope'" in stderr, stderr
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = _cli("train", "toy-avb", "--out", str(blocker / "run"), "--max-steps", "1")
    stdout, stderr = proc.communicate(timeout=budget(120))
    assert proc.returncode == 1 and len(stderr.strip().splitlines()) == 1 and "not writable" in stderr, stderr


def test_train_step_differentiates_each_loss_only_for_its_own_player():
    """The primal loss updates encoder+decoder, the adversary loss the adversary, both from the same pre-update
    parameters (simultaneous updates, Algorithm 1): the gradients train_step applies equal torch.autograd.grad of
    each loss on a copy of the model taken before the step."""
    recipe = find_recipe("toy-avb")
    settings = dataclasses.replace(recipe.train, adversary_steps=1, batch_size=32)
    model = init_model(recipe, seed=5).train()
    before = copy.deepcopy(model)
    optimizers = make_optimizers(model, settings)
    x = torch.eye(4)[torch.arange(32) % 4]
    losses = compute_losses(before, make_players(before, World()), x, 5, 0, settings)
    primal_params = [*before.encoder.parameters(), *before.decoder.parameters()]
    want_primal = torch.autograd.grad(losses.primal, primal_params, retain_graph=True)
    want_adv = torch.autograd.grad(losses.adversary, list(before.adversary.parameters()))
    train_step(model, optimizers, x, 5, 0, settings)
    got_primal = [p.grad for p in (*model.encoder.parameters(), *model.decoder.parameters())]
    got_adv = [p.grad for p in model.adversary.parameters()]
    for got, want in zip([*got_primal, *got_adv], [*want_primal, *want_adv], strict=True):
        assert torch.equal(got, want)
    # the primal gradient really reaches the adversary's parameters if nobody stops it: the split matters
    again = compute_losses(before, make_players(before, World()), x, 5, 0, settings)
    leaked = torch.autograd.grad(again.primal, list(before.adversary.parameters()))
    assert max(g.abs().max() for g in leaked) > 0
    # Adam moved every parameter that got a gradient (the residual blocks' inner layers get none on the first step:
    # their outer layers start at zero)
    for p, q in zip(model.parameters(), before.parameters(), strict=True):
        assert torch.equal(p, q) == (p.grad.abs().max() == 0)
    for part in ("encoder", "decoder", "adversary"):
        pairs = zip(getattr(model, part).parameters(), getattr(before, part).parameters(), strict=True)
        assert any(not torch.equal(p, q) for p, q in pairs), part
