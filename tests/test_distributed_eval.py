"""Evaluation under torchrun: `avb-zoo eval --nproc 2` gives the one-process metrics, rank 0 alone writes and
prints, and bad input is refused before any process starts.

Both runs go through the real command in subprocesses (the two-process one through torchrun's agent, whose
workers run ``python -m avb_zoo.evaluation``), on a briefly trained toy AVB model with 3 test points in batches of 1:
rank 0 evaluates batches 0 and 2, rank 1 batch 1. With the ranks' batches merely concatenated (order 0, 2, 1)
the sums behind some standard error change in their last bits, so the exact comparison also checks the order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from budget import budget
from click.testing import CliRunner

import avb_zoo.training.launch
from avb_zoo.evaluation.evaluate import METRICS_FILE, RUN_DEPENDENT, comparable, in_batch_order
from avb_zoo.training.trainer import train

AVB_ZOO = str(Path(sys.executable).with_name("avb-zoo"))
SMALL = ["--ais-steps", "50", "--ais-chains", "4", "--n-test", "3", "--batch-size", "1", "--json"]
# The paths that may differ between the runs: the timings and the number of processes.
ALLOWED = {f"{section}.{key}" for section, keys in RUN_DEPENDENT.items() for key in keys}


def run_cli(*args: object) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # tiny tensors on 2 cores: one thread per process
    return subprocess.run([AVB_ZOO, *map(str, args)], capture_output=True, text=True, timeout=budget(240), env=env)


def differences(a: object, b: object, prefix: str = "") -> set[str]:
    """The dotted paths where two JSON values differ (compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return set().union(*(differences(a.get(k), b.get(k), f"{prefix}{k}.") for k in a.keys() | b.keys()))
    return set() if a == b and type(a) is type(b) else {prefix.rstrip(".")}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("toy") / "toy-avb"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train("toy-avb", folder, max_steps=200, batch_size=64, seed=0, progress=False)
    finally:
        torch.set_num_threads(threads)
    return folder


@pytest.fixture(scope="module")
def runs(model, tmp_path_factory) -> dict:
    """The same evaluation on one process and on two, each on its own copy of the model folder."""
    out = {}
    for name, extra in (("one", []), ("two", ["--nproc", "2"])):
        folder = tmp_path_factory.mktemp(name) / "model"
        shutil.copytree(model, folder)
        done = run_cli("eval", folder, *SMALL, *extra)
        assert done.returncode == 0, done.stderr
        out[name] = {"stdout": json.loads(done.stdout), "folder": folder}  # one JSON document: one rank printed
    return out


def test_two_processes_give_the_one_process_metrics_exactly(runs):
    """Exact equality (no tolerance): each batch is the same computation with the same keyed randomness on the
    same machine, and the gathered values are put back in batch order before any mean is taken; JSON floats
    round-trip exactly."""
    one, two = runs["one"]["stdout"], runs["two"]["stdout"]
    print(f"log p(x): one process {one['log_likelihood']!r} ± {one['log_likelihood_spread_se']!r}")
    print(f"log p(x): two processes {two['log_likelihood']!r} ± {two['log_likelihood_spread_se']!r}")
    assert one["protocol"]["processes"] == 1 and two["protocol"]["processes"] == 2
    assert differences(one, two) - ALLOWED == set()
    assert comparable(one) == comparable(two)
    # the comparison covers every metric of an AVB model with an adversary on the toy data
    for key in ("log_likelihood", "exact_log_likelihood", "elbo_estimate", "kl_estimate", "reconstruction_error"):
        assert isinstance(one[key], float) and isinstance(one[f"{key}_spread_se"], float)
    assert isinstance(one["log_likelihood_mc_se"], float)
    assert one["elbo_kind"].startswith("estimate") and one["protocol"]["n_test"] == 3
    assert set(RUN_DEPENDENT["diagnostics"]) < one["diagnostics"].keys()


def test_metrics_json_is_written_by_rank_0_alone(runs):
    """The file holds the report rank 0 printed (its own timings) and no temp file is left beside it."""
    one_file = json.loads((runs["one"]["folder"] / METRICS_FILE).read_text())
    two_file = json.loads((runs["two"]["folder"] / METRICS_FILE).read_text())
    assert two_file == runs["two"]["stdout"]
    assert differences(one_file, two_file) - ALLOWED == set()
    assert sorted(p.name for p in runs["two"]["folder"].iterdir()) == sorted(
        p.name for p in runs["one"]["folder"].iterdir()
    )


def test_batches_are_put_back_in_one_process_order():
    assert in_batch_order([[0, 2, 4], [1, 3]], 5) == [0, 1, 2, 3, 4]
    assert in_batch_order([[0, 3], [1], [2]], 4) == [0, 1, 2, 3]
    assert in_batch_order([["only"], []], 1) == ["only"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{empty}"], "not a model folder"),
        (["{model}", "--n-test", "8"], "n_test = 8"),
        (["{model}", "--nnodes", "2"], "--rdzv-endpoint"),
    ],
)
def test_bad_input_under_nproc_is_one_line_and_launches_nothing(model, tmp_path, monkeypatch, args, message):
    from avb_zoo.cli import main

    launched = []
    monkeypatch.setattr(avb_zoo.training.launch, "launch", lambda *a, **k: launched.append(a))
    empty = tmp_path / "empty"
    empty.mkdir()
    args = [a.format(empty=empty, model=model) for a in args]
    result = CliRunner().invoke(main, ["eval", *args, "--nproc", "2", "--ais-steps", "5"])
    assert result.exit_code == 1, result.output
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ") and message in result.stderr
    assert result.stdout == "" and launched == []


def test_good_input_under_nproc_launches_the_module_without_the_launch_options(model, monkeypatch):
    """The counterpart of the test above: the same stubbed launcher is reached when the input is good."""
    from avb_zoo.cli import main

    launched = []
    monkeypatch.setattr(avb_zoo.training.launch, "launch", lambda *a: launched.append(a))
    result = CliRunner().invoke(main, ["eval", str(model), "--nproc", "2", "--ais-steps", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    [(module, argv, settings, what)] = launched
    assert (module, what, settings.nproc) == ("avb_zoo.evaluation", "evaluation", 2)
    assert argv[0] == str(model) and "--nproc" not in argv and argv[argv.index("--ais-steps") + 1] == "5"
    assert "--quiet" in argv
    assert not (model / METRICS_FILE).exists()
