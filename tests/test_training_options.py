"""Training options that cannot make a meaningful run are refused in one line, before any folder is written:
no steps, a batch larger than the data, user data of a dtype that is not an image's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)

from avb_zoo.errors import ConfigError
from avb_zoo.training.trainer import train

SUBSET = Path(__file__).resolve().parent / "data" / "mnist-subset"


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_max_steps_zero_is_refused_by_the_command_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _cli("train", "toy-avb", "--out", out, "--max-steps", 0, "--quiet")
    assert result.exit_code == 1, result.output
    assert "--max-steps must be at least 1" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_max_steps_zero_is_refused_by_the_api(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="at least 1"):
        train("toy-avb", tmp_path / "run", max_steps=0, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_batch_larger_than_the_data_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ["train", "mnist-avb-ac-v1", "--out", out, "--data-dir", SUBSET, "--batch-size", 4096, "--max-steps", 1]
    result = _cli(*args, "--quiet")
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert "--batch-size 4096 is larger than the training data" in line and "\n" not in line
    assert not out.exists()


def test_api_data_of_a_batch_larger_than_it_is_refused(tmp_path: Path) -> None:
    data = np.zeros((10, 4), dtype=np.float32)
    with pytest.raises(ConfigError, match="larger than the training data \\(10 examples\\)"):
        train("toy-avb", tmp_path / "run", data=data, batch_size=64, max_steps=1, progress=False)


@pytest.mark.parametrize(
    "data",
    [
        np.array([[0, 1, 0, 1], [1, 0, 1, 0]], dtype=object),
        np.array([["a", "b", "c", "d"]]),
        np.zeros((4, 4), dtype=np.int64),
        np.zeros((4, 4), dtype=np.complex64),
    ],
    ids=["object", "str", "int64", "complex"],
)
def test_api_data_of_a_wrong_dtype_is_refused_in_one_line(tmp_path: Path, data: np.ndarray) -> None:
    with pytest.raises(ConfigError, match=f"training data has dtype {data.dtype}") as caught:
        train("toy-avb", tmp_path / "run", data=data, batch_size=2, max_steps=1, progress=False)
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "run").exists()


def test_api_data_of_uint8_and_bool_still_train(tmp_path: Path) -> None:
    for i, data in enumerate([np.eye(4, dtype=np.uint8) * 255, np.eye(4, dtype=bool)]):
        result = train("toy-avb", tmp_path / f"run{i}", data=data, batch_size=4, max_steps=1, progress=False)
        assert result.step == 1
