"""The fast training engines against the reference step, and the device noise they draw.

Tolerances: in float64 the fast step does the same arithmetic as the reference in a different order (one
backward pass for both players, Adam's bias corrections as tensors), so 20 steps differ by rounding only;
the measured differences are about 1e-15, and 1e-10 leaves room for a compiler's reassociation while still
catching any real change (a wrong gradient or update moves parameters by about the learning rate, 1e-3).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from budget import budget

from avb_zoo.catalogue.recipes import Recipe, TrainSettings, find_recipe
from avb_zoo.errors import CheckpointError, ConfigError, TrainingDiverged
from avb_zoo.training import device_noise
from avb_zoo.training.batches import ImageBatches, make_batch_source
from avb_zoo.training.checkpoint import load_training_state, read_run_info, save_training_state
from avb_zoo.training.cuda_graphs import graph_blocker
from avb_zoo.training.engines import FastEngine
from avb_zoo.training.fast_step import DeviceInputs, FastStep, HostInputs
from avb_zoo.training.step import make_optimizers, train_step
from avb_zoo.training.trainer import init_model, train

MNIST_SUBSET = Path(__file__).parent / "data" / "mnist-subset"
TOLERANCE = 1e-10

# An MNIST-shaped AVB+AC model small enough to compile in seconds: conv trunk, noise basis, AC, the
# inner-product adversary, two adversary updates per step (every branch of the step).
SMALL_AC = Recipe(
    id="test-mnist-avb-ac-v1",
    description="test",
    model={
        "method": "avb-ac",
        "x_dim": 784,
        "latent_dim": 4,
        "image_shape": [1, 28, 28],
        "data": {"name": "mnist"},
        "encoder": {
            "name": "noise-basis",
            "eps_dim": 4,
            "n_basis": 3,
            "channels": [4],
            "strides": [2],
            "hidden": [16],
            "basis_hidden": [8],
        },
        "decoder": {"name": "bernoulli", "hidden": [16]},
        "adversary": {"name": "inner-product", "hidden": [16], "feature_dim": 8},
    },
    train=TrainSettings(
        data="mnist", batch_size=16, steps=1000, lr_primal=1e-3, lr_adversary=2e-3, adversary_steps=2, loss_scale=0.01
    ),
    source=Path("test"),
)


def _max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


# -- device noise -------------------------------------------------------------------------------------------


def test_philox_matches_the_published_known_answers():
    """Random123's kat_vectors for philox4x32-10: (counter, key) -> output."""
    cases = [
        ([0, 0, 0, 0], (0, 0), [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, (0xFFFFFFFF, 0xFFFFFFFF), [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            (0xA4093822, 0x299F31D0),
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for counter, key, expected in cases:
        words = device_noise.philox4x32([torch.tensor([c]) for c in counter], key)
        assert [int(w) for w in words] == expected


def test_device_noise_is_keyed_and_standard_normal():
    step = torch.tensor(123_456_789_012)  # above 2**32: both counter words are used
    a = device_noise.normal(7, "eps", step, 0, (400, 500), torch.float64)
    assert torch.equal(a, device_noise.normal(7, "eps", step.clone(), 0, (400, 500), torch.float64))
    others = [
        device_noise.normal(8, "eps", step, 0, (400, 500), torch.float64),
        device_noise.normal(7, "contrast", step, 0, (400, 500), torch.float64),
        device_noise.normal(7, "eps", step + 1, 0, (400, 500), torch.float64),
        device_noise.normal(7, "eps", step, 1, (400, 500), torch.float64),
    ]
    for other in others:  # independent streams: correlation ~ N(0, 1/n)
        assert abs(torch.corrcoef(torch.stack([a.flatten(), other.flatten()]))[0, 1]) < 5 / math.sqrt(a.numel())
    n = a.numel()  # mean ~ N(0, 1/n), variance ~ N(1, 2/n): 5 standard errors
    assert abs(a.mean()) < 5 / math.sqrt(n)
    assert abs(a.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs((a**4).mean() - 3) < 5 * math.sqrt(96 / n)  # the fourth moment of N(0,1), Var[z^4] = 96
    u = device_noise.uniform(7, "binarize", step, 0, (n,), torch.float64)
    assert 0 < u.min() and u.max() < 1
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    # a prefix of a longer draw: the numbers of a step do not depend on how many are asked for
    assert torch.equal(
        device_noise.uniform(7, "eps", step, 0, (10,), torch.float32),
        device_noise.uniform(7, "eps", step, 0, (1000,), torch.float32)[:10],
    )


def test_device_inputs_binarise_the_keyed_batch_images():
    source = make_batch_source("mnist", MNIST_SUBSET)
    assert isinstance(source, ImageBatches)
    model = init_model(SMALL_AC, 0).double()
    settings = dataclasses.replace(SMALL_AC.train, batch_size=64)
    inputs = DeviceInputs(model, source, settings, seed=3)
    for step in (0, 5, 1023, 1024, 2000):  # across an index block
        inputs.prepare(step)
        x = inputs(torch.tensor(step)).x
        p = source.probs[source.indices(3, step, 64)].double() / 255
        assert set(x.unique().tolist()) <= {0.0, 1.0}
        assert torch.all(x[p == 0] == 0) and torch.all(x[p == 1] == 1)
        assert abs(x.mean() - p.mean()) < 5 * math.sqrt(float((p * (1 - p)).sum())) / p.numel()


# -- the fast step against the reference ------------------------------------------------------------------------


def _reference_and_fast(recipe: Recipe, data_dir, steps: int, compiled: bool = False, dtype=torch.float64):
    settings = dataclasses.replace(recipe.train, batch_size=16)
    source = make_batch_source(settings.data, data_dir)
    ref = init_model(recipe, 3).to(dtype).train()
    ref_opt = make_optimizers(ref, settings)
    for step in range(steps):
        train_step(ref, ref_opt, source.batch(3, step, settings.batch_size).to(dtype), 3, step, settings)
    fast = init_model(recipe, 3).to(dtype).train()
    fast_step = FastStep(fast, make_optimizers(fast, settings), settings, 0)
    inputs = HostInputs(fast, source, settings, 3)
    program = torch.compile(fast_step.program, dynamic=False) if compiled else fast_step.program
    for step in range(steps):
        program(inputs(step))
    return ref, fast, fast_step


@pytest.mark.parametrize("recipe", ["toy-avb", "toy-vae", "small-ac"])
def test_fast_step_equals_the_reference_step(recipe):
    """Host-drawn inputs, eager: the same 20 updates as train_step (float64)."""
    chosen = SMALL_AC if recipe == "small-ac" else find_recipe(recipe)
    ref, fast, step = _reference_and_fast(chosen, MNIST_SUBSET, 20)
    difference = _max_difference(ref, fast)
    print(f"\nfast step vs train_step, {recipe}, 20 steps, float64: max abs difference {difference:.3g}")
    assert difference < TOLERANCE
    assert int(step.step) == 20 and int(step.first_bad) == -1


def test_compiled_step_equals_the_eager_step():
    """torch.compile of the whole step (forward, one backward, both Adam updates) vs the reference, 20 steps."""
    ref, fast, _ = _reference_and_fast(SMALL_AC, MNIST_SUBSET, 20, compiled=True)
    difference = _max_difference(ref, fast)
    print(f"\ncompiled vs eager, 20 steps, float64: max abs difference {difference:.3g}")
    assert difference < TOLERANCE


@pytest.mark.slow  # another compilation
def test_compiled_step_float32_stays_within_rounding():
    """float32: the compiled step may fuse and reorder; after 20 steps it stays as close to the float64 run as
    the eager float32 run does (within a factor of 10), so it adds no error beyond float32 rounding."""
    exact, _, _ = _reference_and_fast(SMALL_AC, MNIST_SUBSET, 20)
    eager32, compiled32, _ = _reference_and_fast(SMALL_AC, MNIST_SUBSET, 20, compiled=True, dtype=torch.float32)
    drift_eager = _max_difference(exact, eager32.double())
    drift_compiled = _max_difference(exact, compiled32.double())
    print(f"\nfloat32 drift from float64 after 20 steps: eager {drift_eager:.3g}, compiled {drift_compiled:.3g}")
    assert drift_compiled < 10 * max(drift_eager, 1e-6)


def test_fast_step_continues_from_a_reference_checkpoint(tmp_path):
    """Adam's state written by torch.optim.Adam is the fast step's state: 10 reference steps, a checkpoint, 10
    fast steps equal 20 reference steps."""
    settings = dataclasses.replace(SMALL_AC.train, batch_size=16)
    source = make_batch_source(settings.data, MNIST_SUBSET)
    ref, _, _ = _reference_and_fast(SMALL_AC, MNIST_SUBSET, 20)
    first = init_model(SMALL_AC, 3).double().train()
    first_opt = make_optimizers(first, settings)
    for step in range(10):
        train_step(first, first_opt, source.batch(3, step, 16).double(), 3, step, settings)
    from avb_zoo.training.checkpoint import RunInfo

    save_training_state(tmp_path, first, first_opt, RunInfo(SMALL_AC.id, 3, 16, 10, "float64"))
    second = init_model(SMALL_AC, 99).double().train()
    second_opt = make_optimizers(second, settings)
    load_training_state(tmp_path, second, second_opt)
    fast = FastStep(second, second_opt, settings, 10)
    inputs = HostInputs(second, source, settings, 3)
    for step in range(10, 20):
        fast.program(inputs(step))
    assert _max_difference(ref, second) < TOLERANCE


@pytest.mark.slow  # two more compilations (about a minute each on 2 cores)
def test_device_noise_run_is_the_same_function_under_every_engine(tmp_path):
    """train() with device noise: eager and compiled engines give the same run (float64), and a run resumed
    with another engine continues it exactly."""
    common = dict(seed=1, progress=False, dtype="float64", data_dir=MNIST_SUBSET, checkpoint_every=5, noise="device")
    eager = train(SMALL_AC, tmp_path / "eager", max_steps=12, engine="eager", **common)
    compiled = train(SMALL_AC, tmp_path / "compiled", max_steps=12, engine="compiled", **common)
    assert compiled.engine == "compiled" and compiled.noise == "device"
    assert _max_difference(eager.model, compiled.model) < TOLERANCE
    train(SMALL_AC, tmp_path / "mixed", max_steps=5, engine="eager", **common)
    resumed = train(SMALL_AC, tmp_path / "mixed", max_steps=12, engine="compiled", resume=True, **common)
    assert resumed.step == 12 and _max_difference(eager.model, resumed.model) < TOLERANCE


def test_a_run_keeps_its_noise_stream(tmp_path):
    """The noise stream is part of the run: a resume takes the checkpoint's, and asking for the other fails."""
    common = dict(seed=1, progress=False, checkpoint_every=5)
    whole = train("toy-vae", tmp_path / "whole", max_steps=10, noise="device", **common)
    train("toy-vae", tmp_path / "run", max_steps=5, noise="device", **common)
    assert read_run_info(tmp_path / "run").noise == "device"
    resumed = train("toy-vae", tmp_path / "run", max_steps=10, resume=True, **common)  # noise from the checkpoint
    assert resumed.noise == "device" and _max_difference(whole.model, resumed.model) == 0
    with pytest.raises(CheckpointError, match=r"noise stream 'device' \(asked 'host'\)"):
        train("toy-vae", tmp_path / "run", max_steps=14, resume=True, noise="host", **common)


def test_graphs_fall_back_with_a_reason_on_a_cpu():
    assert "CUDA device" in graph_blocker(torch.device("cpu"), "device", False)
    assert "device noise" in graph_blocker(torch.device("cuda"), "host", False)
    assert "torchrun" in graph_blocker(torch.device("cuda"), "device", True)
    model = init_model(SMALL_AC, 0)
    settings = SMALL_AC.train
    source = make_batch_source("mnist", MNIST_SUBSET)
    with pytest.warns(UserWarning, match="falls back to compiled: CUDA graphs need a CUDA device"):
        engine = FastEngine("graphs", "device", model, make_optimizers(model, settings), settings, source, 0, 0)
    assert engine.name == "compiled" and engine.notes


def test_graphs_engine_up_to_the_capture_call(tmp_path, monkeypatch):
    """The graphs engine's host side on a CPU: warm-up steps, one capture of a zero-argument program, then one
    replay per step with the batch indices uploaded first. A stand-in capture records the program and replays
    it eagerly (torch.compile is skipped to keep the test fast); the run equals the eager device-noise run,
    across an index-block boundary."""
    from avb_zoo.training import engines

    captured = []

    class Replayer:
        def __init__(self, program):
            self.program = program

        def replay(self):
            self.program()

    real_capture = engines.capture

    def fake_capture(*args, **kwargs):
        inspect.signature(real_capture).bind(*args, **kwargs)  # called as the real capture must be
        (program,) = args
        captured.append(program)
        return Replayer(program)

    monkeypatch.setattr(engines, "graph_blocker", lambda *args, **kwargs: None)
    monkeypatch.setattr(engines, "capture", fake_capture)
    monkeypatch.setattr(engines.torch, "compile", lambda fn, **kwargs: fn)
    settings = dict(seed=2, progress=False, dtype="float64", data_dir=MNIST_SUBSET, noise="device", batch_size=4)
    monkeypatch.setattr("avb_zoo.training.fast_step.INDEX_BLOCK", 8)
    graphs = train(SMALL_AC, tmp_path / "graphs", max_steps=12, engine="graphs", **settings)
    assert graphs.engine == "graphs" and graphs.engine_notes == [] and len(captured) == 1
    eager = train(SMALL_AC, tmp_path / "eager", max_steps=12, engine="eager", **settings)
    assert _max_difference(eager.model, graphs.model) == 0


def test_divergence_in_the_fast_step_stops_at_that_step(tmp_path, monkeypatch):
    """A non-finite loss at step 7: nothing is updated from then on, the run stops naming step 7, and the
    checkpoint of step 5 is kept."""
    real = FastStep._objective

    def poisoned(self, *args):
        total, report = real(self, *args)
        return total, torch.where(self.step == 7, report * float("nan"), report)

    monkeypatch.setattr(FastStep, "_objective", poisoned)
    with pytest.raises(TrainingDiverged, match=r"non-finite at step 7 .*last good checkpoint \(step 5\)"):
        train(
            SMALL_AC,
            tmp_path / "run",
            max_steps=20,
            checkpoint_every=5,
            report_every=10,
            progress=False,
            data_dir=MNIST_SUBSET,
            engine="eager",
            noise="device",
        )
    assert read_run_info(tmp_path / "run").step == 5


def test_history_and_time_limit(tmp_path):
    result = train("toy-vae", tmp_path / "run", max_steps=40, report_every=10, progress=False, noise="device")
    assert [s for s, _ in result.history] == [10, 20, 30, 40]
    stopped = train("toy-vae", tmp_path / "timed", max_seconds=1e-9, progress=False)
    assert stopped.step == 1 and read_run_info(tmp_path / "timed").step == 1  # stopped with a checkpoint
    with pytest.raises(ConfigError, match="max_seconds"):
        train("toy-vae", tmp_path / "bad", max_seconds=0, progress=False)


def test_cli_engine_options(tmp_path):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "avb_zoo.cli", *args], capture_output=True, text=True, timeout=budget(300)
        )

    done = cli("train", "toy-vae", "--out", str(tmp_path / "a"), "--max-steps", "3", "--noise", "device", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["engine"] == "eager" and summary["noise"] == "device" and summary["step"] == 3
    bad = cli("train", "toy-vae", "--out", str(tmp_path / "b"), "--engine", "compiled", "--nproc", "2")
    assert bad.returncode == 1 and len(bad.stderr.strip().splitlines()) == 1 and "one process" in bad.stderr
    unknown = cli("train", "toy-vae", "--out", str(tmp_path / "c"), "--engine", "turbo")
    assert unknown.returncode != 0 and "turbo" in unknown.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_graphs_equal_compiled_on_cuda(tmp_path):
    common = dict(seed=1, progress=False, data_dir=MNIST_SUBSET, checkpoint_every=10, noise="device", device="cuda")
    compiled = train(SMALL_AC, tmp_path / "compiled", max_steps=20, engine="compiled", dtype="float64", **common)
    graphs = train(SMALL_AC, tmp_path / "graphs", max_steps=20, engine="graphs", dtype="float64", **common)
    assert graphs.engine == "graphs", graphs.engine_notes
    assert _max_difference(compiled.model, graphs.model) < TOLERANCE
