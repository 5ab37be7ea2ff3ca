"""Training under torchrun (DDP, gloo): results independent of the world size, elastic restart, rendezvous.

Every multi-process run goes through the real command (`avb-zoo train --nproc N`, which starts torchrun's
elastic agent); the one-process references run in this process through the same trainer.
"""

from __future__ import annotations

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from budget import budget
from safetensors.torch import load_file

from avb_zoo.training.checkpoint import STATE_FILE, read_run_info
from avb_zoo.training.trainer import train

AVB_ZOO = str(Path(sys.executable).with_name("avb-zoo"))
STEPS = 200


def run_cli(*args: object, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([AVB_ZOO, *map(str, args)], capture_output=True, text=True, timeout=budget(timeout))


def state(folder: Path) -> dict[str, torch.Tensor]:
    """Every floating-point tensor of the training state (parameters and Adam moments), as float64."""
    return {k: v.double() for k, v in load_file(folder / STATE_FILE).items() if v.is_floating_point()}


def max_difference(a: Path, b: Path, prefix: str = "") -> float:
    """Max abs difference over the tensors whose name starts with ``prefix`` ("model." for the parameters)."""
    sa, sb = state(a), state(b)
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max()) for k in sa if k.startswith(prefix))


def one_process(folder: Path, dtype: str, steps: int = STEPS, **kwargs) -> Path:
    train("toy-avb", folder, max_steps=steps, dtype=dtype, progress=False, checkpoint_every=20, **kwargs)
    return folder


def two_processes(folder: Path, dtype: str, *extra: object, steps: int = STEPS) -> dict:
    done = run_cli(
        "train", "toy-avb", "--out", folder, "--max-steps", steps, "--dtype", dtype, "--nproc", 2,
        "--checkpoint-every", 20, "--quiet", "--json", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # one JSON document: rank 0 alone reports


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("ddp")
    summary = two_processes(base / "two64", "float64")
    assert summary["processes"] == 2 and summary["step"] == STEPS and summary["restarts"] == 0
    return {"one64": one_process(base / "one64", "float64"), "two64": base / "two64", "base": base}


def test_two_ranks_match_one_rank_in_float64(runs):
    """Same seed, same global batch: the runs differ only in the order of floating-point sums (each rank's mean
    over half the batch, then DDP's average), about 1e-16 relative per operation in float64."""
    difference = max_difference(runs["one64"], runs["two64"])
    print(f"\ntoy-avb, {STEPS} steps, float64: max |2 ranks - 1 rank| = {difference:.3g}")
    assert difference <= 1e-9


def float32_comparison(base: Path, steps: int) -> tuple[float, float, float]:
    """(|1 rank f32 - f64|, |2 ranks f32 - f64|, |2 ranks f32 - 1 rank f32|), max over the parameters (Adam's
    moments of near-zero gradients carry relative rounding of order one and are left to the float64 tests)."""
    one64 = one_process(base / f"one64-{steps}", "float64", steps=steps)
    one32 = one_process(base / f"one32-{steps}", "float32", steps=steps)
    two_processes(base / f"two32-{steps}", "float32", steps=steps)
    two32 = base / f"two32-{steps}"
    pairs = ((one32, one64), (two32, one64), (two32, one32))
    result = tuple(max_difference(a, b, "model.") for a, b in pairs)
    drifts = f"|1 rank - f64| {result[0]:.3g}, |2 ranks - f64| {result[1]:.3g}, |2 - 1| {result[2]:.3g}"
    print(f"\nfloat32, {steps} steps: {drifts}")
    return result


def test_two_ranks_match_one_rank_in_float32(runs):
    """In float32 both runs are the float64 trajectory plus float32 rounding; the 2-rank run's rounding differs
    only in the order of sums, so it stays as close to the float64 run as the 1-rank run does (a factor 3
    allows for its different rounding pattern), and the two float32 runs are within the sum of their drifts.
    Over 3 steps that drift is about 4e-8; a player whose gradients are not averaged moves parameters by
    about the learning rate (1e-3) per step, so 3 steps detect it as surely as 10. The adversarial game soon
    amplifies rounding: a single pre-activation whose sign a rounding flips changes the trajectory at 1e-4 by
    step 20 and at parameter scale by step 200, in one process as in two (the slow test below), so a tight
    float32 comparison needs a short horizon. Where that horizon ends depends on the CPU's float32 kernels and
    on Adam's kernel: Adam scales a gradient that is pure rounding noise to a step of order the learning rate,
    so one such coordinate moves a run by ~2e-4 (with torch's fused Adam the 2-rank run does so between steps
    3 and 6 here, while the 1-rank run stays within 1e-7 of float64 up to step 10); on some machines both
    float32 runs move about 1e-3 from float64 while they agree with each other to about 1e-7. Either way the
    comparison is not vacuous: the float32 runs follow float64 (drift below 1e-6) or follow each other that
    closely."""
    drift_one, drift_two, between = float32_comparison(runs["base"], 3)
    assert min(drift_one, between) < 1e-6
    assert drift_two <= 3 * drift_one
    assert between <= 4 * drift_one


@pytest.mark.slow
def test_two_ranks_match_one_rank_in_float32_over_200_steps(runs):
    """Over 200 steps rounding is amplified to the parameters' own scale in float32, for one process as much as
    for two: the 2-rank run is no farther from the float64 run than the 1-rank run is, beyond the factor 3."""
    drift_one, drift_two, between = float32_comparison(runs["base"], STEPS)
    assert drift_two <= 3 * drift_one
    assert between <= 4 * drift_one


def test_each_gradient_is_all_reduced_once_per_update(tmp_path, monkeypatch):
    """A world of one joined in this process: DDP still reduces every bucket, and a communication hook counts
    the parameters of each. toy-avb makes 2 adversary updates per step (adversary_steps = 2) and one primal
    update, so after 3 steps every primal parameter was reduced 3 times and every adversary parameter 6."""
    import torch.distributed as dist
    from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

    from avb_zoo.training import players

    counts: collections.Counter = collections.Counter()

    def counting(process_group, bucket):
        for p in bucket.parameters():
            counts[id(p)] += 1
        return allreduce_hook(process_group, bucket)

    class CountedDDP(players.DistributedDataParallel):
        def __init__(self, module, **kwargs):
            super().__init__(module, **kwargs)
            self.register_comm_hook(None, counting)

    monkeypatch.setattr(players, "DistributedDataParallel", CountedDDP)
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        result = train("toy-avb", tmp_path / "ddp", max_steps=3, progress=False, dtype="float64")
    finally:
        dist.destroy_process_group()
    model = result.model
    primal = [*model.encoder.parameters(), *model.decoder.parameters()]
    assert [counts[id(p)] for p in primal] == [3] * len(primal)
    assert [counts[id(p)] for p in model.adversary.parameters()] == [6] * len(list(model.adversary.parameters()))
    plain = train("toy-avb", tmp_path / "plain", max_steps=3, progress=False, dtype="float64")
    assert max_difference(tmp_path / "ddp", tmp_path / "plain") == 0.0  # a world of one changes nothing
    assert plain.world.size == 1


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="finds the workers through /proc (Linux)")
def test_a_killed_rank_restarts_the_group_which_resumes_to_the_same_parameters(runs, tmp_path):
    out = tmp_path / "elastic"
    command = [
        AVB_ZOO, "train", "toy-avb", "--out", out, "--max-steps", STEPS, "--dtype", "float64", "--nproc", 2,
        "--checkpoint-every", 20, "--max-restarts", 1, "--quiet", "--json",
    ]  # fmt: skip
    agent = subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    killed_at = None
    deadline = time.monotonic() + 120
    while killed_at is None and time.monotonic() < deadline and agent.poll() is None:
        if (out / STATE_FILE).exists():
            try:
                step = read_run_info(out).step
            except Exception:  # the file is being replaced this instant
                step = 0
            workers = _children(agent.pid)
            if step >= 60 and workers:
                os.kill(workers[-1], signal.SIGKILL)
                killed_at = step
        time.sleep(0.02)
    stdout, stderr = agent.communicate(timeout=budget(240))
    assert killed_at is not None and killed_at < STEPS, f"the run ended before a rank could be killed: {stderr}"
    assert agent.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["restarts"] == 1 and summary["step"] == STEPS
    difference = max_difference(out, runs["two64"])
    print(f"\nkilled one rank at checkpoint step {killed_at}; max |restarted - uninterrupted| = {difference:.3g}")
    assert difference <= 1e-12  # same world size, same sums: equal up to nothing but the restart


def test_resuming_with_another_world_size_gives_the_same_result(runs, tmp_path):
    out = tmp_path / "switch"
    two_processes(out, "float64", steps=120)
    one_process(out, "float64", resume=True)  # the last 80 steps in one process
    assert read_run_info(out).step == STEPS
    assert max_difference(out, runs["one64"]) <= 1e-9


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_agents_on_loopback_make_one_run(runs, tmp_path):
    """Two machines as two torchrun agents (c10d rendezvous on 127.0.0.1), one process each."""
    out, port = tmp_path / "nodes", _free_port()
    command = [
        AVB_ZOO, "train", "toy-avb", "--out", out, "--max-steps", STEPS, "--dtype", "float64", "--nproc", 1,
        "--nnodes", 2, "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-timeout", int(budget(60)),
        "--checkpoint-every", 20,
        "--quiet", "--json",
    ]  # fmt: skip
    agents = [subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    agents.append(subprocess.Popen(list(map(str, command)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [a.communicate(timeout=budget(240)) for a in agents]
    for agent, (_, stderr) in zip(agents, outputs, strict=True):
        assert agent.returncode == 0, stderr
    reports = [json.loads(stdout) for stdout, _ in outputs if stdout.strip()]
    assert len(reports) == 1 and reports[0]["processes"] == 2  # the agent that hosts rank 0 reports
    assert max_difference(out, runs["one64"]) <= 1e-9


def test_a_machine_that_never_joins_times_out_with_one_line(tmp_path):
    out = tmp_path / "alone"
    done = run_cli(
        "train", "toy-avb", "--out", out, "--nproc", 1, "--nnodes", 2,
        "--rdzv-endpoint", f"127.0.0.1:{_free_port()}", "--rdzv-timeout", 3, "--max-steps", 5,
    )  # fmt: skip
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "timed out after 3 s" in lines[0] and "2 machines" in lines[0], done.stderr
    assert not out.exists() or not any(out.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", 129], "global batch size 129 does not split evenly across 2 processes"),
        (["--nnodes", 2], "needs --rdzv-endpoint"),
        (["--rdzv-endpoint", "nowhere"], "must be HOST:PORT"),
    ],
)
def test_bad_launches_fail_up_front_with_one_line(tmp_path, args, message):
    out = tmp_path / "run"
    done = run_cli("train", "toy-avb", "--out", out, "--nproc", 2, "--max-steps", 5, *args)
    assert done.returncode == 1 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr, done.stderr
    assert not out.exists()


def test_resuming_another_run_under_torchrun_is_refused_and_leaves_the_checkpoint(runs, tmp_path):
    out = tmp_path / "other"
    one_process(out, "float64", steps=20)
    before = (out / STATE_FILE).read_bytes()
    for args, message in (
        (["--seed", 1], "seed 0 (asked 1)"),
        (["--batch-size", 64], "batch size 128 (asked 64)"),
        (["--dtype", "float32"], "dtype 'float64' (asked 'float32')"),
    ):
        extra = [] if "--dtype" in args else ["--dtype", "float64"]
        done = run_cli("train", "toy-avb", "--out", out, "--nproc", 2, "--resume", "--max-steps", 40, *args, *extra)
        assert done.returncode == 1 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert (out / STATE_FILE).read_bytes() == before


MNIST_STEPS = 20


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_mnist_avb_ac_two_ranks_match_one_rank(tmp_path, dtype):
    """20 steps of mnist-avb-ac (conv encoder, noise basis, AC, 3 adversary updates per step) on the shipped
    MNIST subset, in float32 or float64 products (the recipe's bf16 is not a summation-order question).
    float64: summation order only, so 1e-9 as for the toy. float32: the 1-rank float32 run's own distance to
    float64 bounds the 2-rank run's, as in the toy's float32 test."""
    data = Path(__file__).parent / "data" / "mnist-subset"

    def one(folder: Path, kind: str) -> Path:
        train(
            "mnist-avb-ac-v1", folder, max_steps=MNIST_STEPS, dtype=kind, precision="float32", data_dir=data,
            progress=False,
        )  # fmt: skip
        return folder

    two = tmp_path / "two"
    done = run_cli(
        "train", "mnist-avb-ac-v1", "--out", two, "--max-steps", MNIST_STEPS, "--dtype", dtype, "--nproc", 2,
        "--precision", "float32",
        "--data-dir", data, "--quiet", "--json", timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    one64 = one(tmp_path / "one64", "float64")
    if dtype == "float64":
        difference = max_difference(two, one64)
        print(f"\nmnist-avb-ac, {MNIST_STEPS} steps, float64: max |2 ranks - 1 rank| = {difference:.3g}")
        assert difference <= 1e-9
        return
    one32 = one(tmp_path / "one32", "float32")
    pairs = ((one32, one64), (two, one64), (two, one32))
    drift_one, drift_two, between = (max_difference(a, b, "model.") for a, b in pairs)
    print(f"\nmnist-avb-ac float32: |1 rank - f64| {drift_one:.3g}, |2 ranks - f64| {drift_two:.3g}", end=" ")
    print(f"|2 - 1| {between:.3g}")
    assert drift_two <= 3 * drift_one
    assert between <= 4 * drift_one
