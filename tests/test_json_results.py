"""Every command that prints a result prints it as one JSON object with --json (and nothing else on stdout)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from mnist_mirror import serve, subset_as_mnist
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

SUBSET = Path(__file__).resolve().parent / "data" / "mnist-subset"


def _json(*args) -> dict:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_sample_encode_reconstruct_print_json(tmp_path: Path) -> None:
    done = _json("sample", "toy-avb", "-n", 4, "--out", tmp_path / "s.png", "--npy", tmp_path / "s.npy", "--json")
    assert done["samples"] == 4 and len(done["files"]) == 2
    assert _json("sample", "eight-schools-avb-ac", "-n", 3, "--npy", tmp_path / "d.npy", "--json")["draws"] == 3
    digits = _json("data", "digits", "--bundled", "-n", 2, "--out", tmp_path / "d2.npy", "--json")
    assert digits["count"] == 2 and digits["files"] == [str(tmp_path / "d2.npy")]
    encoded = _json("encode", "mnist-avb-ac", tmp_path / "d2.npy", "--out", tmp_path / "z.npy", "--json")
    assert encoded["shape"] == [2, 32] and encoded["out"] == str(tmp_path / "z.npy")
    rebuilt = _json("reconstruct", "mnist-avb-ac", tmp_path / "d2.npy", "--out", tmp_path / "r.png", "--json")
    assert rebuilt["images"] == 2


def test_data_download_and_plot_print_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    subset_as_mnist(monkeypatch)
    with serve(SUBSET) as url:
        fetched = _json("data", "download", "mnist", "--dir", tmp_path / "mnist", "--mirror", url, "--json")
    assert fetched["dir"] == str(tmp_path / "mnist") and len(fetched["files"]) == 4
    run = tmp_path / "run"
    _json("train", "toy-avb", "--out", run, "--max-steps", 4, "--log-every", 2, "--quiet", "--json")
    plotted = _json("plot", run, "--json")
    assert plotted["reports"] == 2 and plotted["out"] == str(run / "losses.png")


@pytest.mark.parametrize("command", ["sample", "encode", "reconstruct", "plot", "export-web", "web-runtime"])
def test_the_commands_take_json(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert "--json" in result.output
    for sub in ("download", "digits"):
        assert "--json" in CliRunner().invoke(main, ["data", sub, "--help"]).output
