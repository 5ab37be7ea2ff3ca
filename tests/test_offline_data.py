"""Without a network, MNIST's absence is one line that names every way to give it, and a failed command leaves no
empty folder behind (the download's folder, a training run's folder)."""

from __future__ import annotations

from pathlib import Path

from avb_zoo.cli import main
from click.testing import CliRunner


def _cli(*args: object, **env: str):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


WAYS = (
    "avb-zoo data download mnist",
    "--mirror URL",
    "file:///",
    "AVB_ZOO_DATA",
    "--data-dir",
    "tests/data/mnist-subset",
)


def test_a_failed_download_names_every_way_and_leaves_no_folder(tmp_path: Path) -> None:
    where = tmp_path / "new" / "mnist"
    result = _cli("data", "download", "mnist", "--dir", where, "--mirror", "http://127.0.0.1:9/", "--timeout", 5)
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    for way in WAYS:
        assert way in result.output, way
    assert not (tmp_path / "new").exists()


def test_training_without_data_names_every_way_and_leaves_no_run_folder(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "mnist"
    result = _cli("train", "mnist-avb-ac-v1", "--out", out, "--max-steps", 5, AVB_ZOO_DATA=str(tmp_path / "none"))
    assert result.exit_code == 1 and len(result.output.strip().splitlines()) == 1
    for way in WAYS:
        assert way in result.output, way
    assert not out.exists() and not (tmp_path / "runs").exists()
