"""A push publishes a usable model: ``avb-zoo push`` of a folder without ONNX graphs exports and verifies them
first (saying so) or, with --no-export, refuses with the command to run; and the card promises the runtime and
``avb-zoo sample`` only to a repo that holds the graphs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from avb_zoo.cli import main
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)
from zoo_helpers import SMALL, model_folder

from avb_zoo.cards.card import render_model_card


@pytest.fixture
def hub(hub_server: HubFixture, monkeypatch: pytest.MonkeyPatch) -> HubFixture:  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    return hub_server


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_push_of_a_folder_without_graphs_exports_them_and_the_pushed_model_samples(hub, tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "saved", SMALL, 0)  # what save_pretrained writes: no onnx/
    result = _cli("push", folder, "--repo-id", "user/usable")
    assert result.exit_code == 0, result.output
    assert (
        f"{folder} holds no ONNX graphs: exporting and verifying them first (avb-zoo export {folder})" in result.output
    )
    files = hub.server.repo("user/usable").commits[hub.server.repo("user/usable").branches["main"]].files
    assert {"onnx/sampler.onnx", "onnx/encoder.onnx", "onnx/verification.json"} <= set(files)
    sampled = _cli("sample", "hf-hub:user/usable", "-n", 4, "--npy", tmp_path / "s.npy", "--seed", 0)
    assert sampled.exit_code == 0, sampled.output
    assert np.load(tmp_path / "s.npy").shape == (4, 784)


def test_push_no_export_refuses_with_the_command_and_sends_nothing(hub, tmp_path: Path) -> None:
    folder = model_folder(tmp_path / "saved", SMALL, 0)
    result = _cli("push", folder, "--repo-id", "user/refused", "--no-export")
    assert result.exit_code == 1
    assert result.output.strip() == result.output.strip().splitlines()[0]
    assert f"run `avb-zoo export {folder}` first" in result.output
    assert not (folder / "onnx").exists() and hub.server.requests == []
    (folder / "onnx").mkdir()  # an onnx/ without its report: not written into, refused the same way
    result = _cli("push", folder, "--repo-id", "user/refused")
    assert result.exit_code == 1 and "holds no verified ONNX graphs" in result.output
    assert list((folder / "onnx").iterdir()) == [] and hub.server.requests == []


def test_the_card_promises_the_runtime_only_with_graphs() -> None:
    config = {**SMALL, "id": "test/model-v1", "format_version": 1, "adversary": None}
    without = render_model_card(config, {}, "user/x", {"config.json": "0" * 64, "model.safetensors": "1" * 64})
    assert 'Sampler("hf-hub:user/x")' not in without and "avb-zoo sample" not in without
    assert "serves torch only" in without and "AVBModel.from_pretrained" in without
    with_graphs = render_model_card(config, {}, "user/x", {"config.json": "0" * 64, "onnx/sampler.onnx": "2" * 64})
    assert 'Sampler("hf-hub:user/x")' in with_graphs and "avb-zoo sample hf-hub:user/x" in with_graphs
