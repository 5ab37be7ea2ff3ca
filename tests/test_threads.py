"""The thread policy: --threads checked as one line on every command, the automatic choice, and its record."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from avb_zoo.errors import ConfigError
from avb_zoo.util import threads as policy
from avb_zoo.util.threads import (
    SMALL_OP_FLOPS,
    OtherLoad,
    ThreadChoice,
    check_threads,
    choose_threads,
    env_threads,
    idle_cores,
    logical_cpus,
    other_busy_cores,
    physical_cores,
)

BAD_COUNTS = ["0", "-1", "10000"]


@pytest.fixture(autouse=True)
def no_thread_variables(monkeypatch: pytest.MonkeyPatch):
    """Each test sets the thread variables it needs; torch's count is put back afterwards."""
    for name in policy.THREAD_ENV:
        monkeypatch.delenv(name, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def run(*args: object) -> tuple[int, str]:
    from avb_zoo.cli import main

    result = CliRunner().invoke(main, [str(a) for a in args])
    return result.exit_code, result.output


# util.threads


def test_check_threads_accepts_one_to_the_cpus() -> None:
    assert check_threads(None) is None
    assert check_threads(1) == 1
    assert check_threads(logical_cpus()) == logical_cpus()


@pytest.mark.parametrize("bad", [0, -1, "cpus+1", True, False, "2", 1.5, 2.0])
def test_check_threads_refuses_everything_else(bad: object) -> None:
    value = logical_cpus() + 1 if bad == "cpus+1" else bad
    with pytest.raises(ConfigError, match=f"--threads must be a whole number from 1 to {logical_cpus()}"):
        check_threads(value)  # type: ignore[arg-type]


def test_thread_variables_are_honoured_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    assert env_threads() is None
    monkeypatch.setenv("MKL_NUM_THREADS", "2")
    assert env_threads() == ("MKL_NUM_THREADS", 2)
    monkeypatch.setenv("OMP_NUM_THREADS", " 3 ")
    assert env_threads() == ("OMP_NUM_THREADS", 3)
    choice = choose_threads()
    assert choice.source == "OMP_NUM_THREADS" and choice.threads == min(3, logical_cpus())
    assert choose_threads(1).source == "--threads"  # --threads wins over the variables


@pytest.mark.parametrize("value", ["abc", "0", "-2", "1.5", ""])
def test_a_thread_variable_that_is_not_a_count_is_ignored(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert env_threads() is None
    choice = choose_threads(mean_op_flops=1.0)
    assert choice == ThreadChoice(1, "auto", "products too small to split")


def test_tiny_products_take_one_thread_without_measuring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "other_busy_cores", lambda **_: pytest.fail("measured for a tiny network"))
    choice = choose_threads(None, SMALL_OP_FLOPS / 2)
    assert (choice.threads, choice.automatic) == (1, True)
    assert choice.describe() == "1 (auto: products too small to split)"


def test_automatic_choice_takes_the_idle_cores_shared_among_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "physical_cores", lambda: 8)
    monkeypatch.setattr(policy, "other_busy_cores", lambda **_: 2.0)
    assert choose_threads(None, 1e9).threads == 6
    shared = choose_threads(None, 1e9, processes=4)
    assert shared.threads == 1 and "4 processes share the rest" in shared.reason
    assert "2.0 of 8 physical cores busy" in shared.reason


@pytest.mark.parametrize(
    ("busy", "cores", "idle"),
    [(0.0, 4, 4), (0.2, 4, 4), (0.5, 4, 3), (1.6, 4, 2), (1.2, 2, 1), (5.0, 2, 1), (0.0, 1, 1), (-1.0, 2, 2)],
)
def test_idle_cores(busy: float, cores: int, idle: int) -> None:
    assert idle_cores(busy, cores) == idle


def test_physical_cores_are_at_most_the_logical_cpus() -> None:
    assert 1 <= physical_cores() <= logical_cpus()


def test_a_load_begun_earlier_shortens_the_measurement() -> None:
    load = OtherLoad()
    time.sleep(policy.MEASURE_SECONDS)
    started = time.monotonic()
    busy = other_busy_cores(load=load)
    assert time.monotonic() - started < policy.MEASURE_SECONDS / 2
    assert busy >= 0.0


# compute.threads


def test_governed_sets_torch_threads_inside_and_restores_them() -> None:
    from avb_zoo.compute.threads import governed, tick

    torch.set_num_threads(1)
    choice = ThreadChoice(logical_cpus(), "--threads")
    with governed(choice) as governor:
        assert torch.get_num_threads() == logical_cpus()
        tick()  # a fixed count is never moved
        assert governor.record() == {"threads": logical_cpus(), "threads_source": choice.describe()}
    assert torch.get_num_threads() == 1
    tick()  # no block open: nothing to do


def test_tick_reaches_the_innermost_automatic_governor(monkeypatch: pytest.MonkeyPatch) -> None:
    from avb_zoo.compute import threads as compute_threads

    monkeypatch.setattr(compute_threads, "physical_cores", lambda: 1)
    choice = ThreadChoice(1, "auto", "other programs kept 0.0 of 1 physical cores busy", follows_load=True)
    with compute_threads.governed(choice) as governor:
        assert governor.active
        governor.next_check = 0.0  # due now
        monkeypatch.setattr(governor.load, "busy_cores", lambda: 0.0)
        compute_threads.tick()
        assert governor.next_check > 0.0


# runtime sessions


def test_runtime_sessions_take_the_thread_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from avb_zoo.runtime import Sampler
    from avb_zoo.runtime.session import thread_choice

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert thread_choice() == ThreadChoice(1, "OMP_NUM_THREADS")
    sampler = Sampler("toy-avb")
    assert sampler.graph.threads == 1
    assert Sampler("toy-avb", threads=logical_cpus()).graph.threads == logical_cpus()


def test_runtime_automatic_choice_is_measured_once_for_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    from avb_zoo.runtime import session

    calls = []

    def counted(**kwargs: object) -> ThreadChoice:
        calls.append(kwargs)
        return ThreadChoice(1, "auto", "measured")

    monkeypatch.setattr(session, "_CHOSEN", [])
    monkeypatch.setattr(session, "choose_threads", counted)
    assert session.default_threads() == 1 and session.default_threads() == 1
    assert len(calls) == 1 and calls[0]["load"] is session.LOAD


# the commands


def _command(name: str, tmp_path: Path) -> list[object]:
    """A command that would write an output file, given valid arguments besides --threads."""
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((2, 4), dtype=np.float32))  # toy-avb: 2 x 2 images
    return {
        "train": ["train", "toy-avb", "--out", tmp_path / "run", "--max-steps", "1"],
        "eval": ["eval", "toy-avb", "--ais-steps", "2", "--ais-chains", "1"],
        "sample": ["sample", "toy-avb", "-n", "4", "--npy", tmp_path / "out.npy"],
        "encode": ["encode", "toy-avb", x, "--out", tmp_path / "out.npy"],
        "reconstruct": ["reconstruct", "toy-avb", x, "--out", tmp_path / "out.png"],
        "export": ["export", "toy-avb", "--out", tmp_path / "run"],
    }[name]


@pytest.mark.parametrize("count", BAD_COUNTS)
@pytest.mark.parametrize("command", ["train", "eval", "sample", "encode", "reconstruct", "export"])
def test_a_bad_thread_count_is_one_line_and_writes_nothing(command: str, count: str, tmp_path: Path) -> None:
    args = _command(command, tmp_path)
    before = sorted(tmp_path.iterdir())
    code, out = run(*args, "--threads", count)
    assert code != 0
    assert out.strip().splitlines() == [
        f"error: --threads must be a whole number from 1 to {logical_cpus()} (the CPUs this process may use), "
        f"got {count}"
    ]
    assert sorted(tmp_path.iterdir()) == before


def test_train_records_its_threads_in_training_json(tmp_path: Path) -> None:
    out = tmp_path / "run"
    code, text = run("train", "toy-avb", "--out", out, "--max-steps", "2", "--threads", "1", "--quiet", "--json")
    assert code == 0, text
    summary = json.loads(text)
    record = json.loads((out / "training.json").read_text())
    for result in (summary, record):
        assert result["threads"] == 1 and result["threads_source"] == "1 (--threads)"


def test_runtime_commands_run_on_the_threads_given(tmp_path: Path) -> None:
    args = _command("encode", tmp_path)
    code, out = run(*args, "--threads", "1")
    assert code == 0, out
    assert np.load(tmp_path / "out.npy").shape == (2, 2)
    code, out = run(*_command("sample", tmp_path), "--threads", str(logical_cpus()))
    assert code == 0, out


def test_train_gives_the_caller_its_thread_count_back(tmp_path: Path) -> None:
    from avb_zoo.training.trainer import train

    torch.set_num_threads(1)
    result = train("toy-avb", tmp_path / "run", max_steps=2, threads=logical_cpus(), progress=False)
    assert result.threads["threads"] == logical_cpus()
    assert torch.get_num_threads() == 1
