"""from_pretrained / save_pretrained / push_to_hub, and one face for the API (load takes what Sampler takes)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from avb_zoo.cli import main
from budget import budget
from click.testing import CliRunner
from hub_fixtures import HubFixture, hub_server  # noqa: F401
from zoo_helpers import SMALL

import avb_zoo
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import model_tensors

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
AVB = {
    **SMALL,
    "method": "avb",
    "encoder": {"name": "concat-mlp", "hidden": [16], "noise_dim": 4},
    "adversary": {"name": "residual", "width": 16, "blocks": 1},
}


def _same(a: AVBModel, b: AVBModel) -> bool:
    ta, tb = (
        model_tensors(a, ("encoder", "decoder", "adversary")),
        model_tensors(b, ("encoder", "decoder", "adversary")),
    )
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) and ta[k].dtype == tb[k].dtype for k in ta)


@pytest.fixture
def hub(hub_server: HubFixture, monkeypatch: pytest.MonkeyPatch) -> HubFixture:  # noqa: F811
    monkeypatch.setenv("HF_TOKEN", hub_server.token)
    return hub_server


def test_save_pretrained_from_pretrained_and_push_to_hub_round_trip_bitwise(hub: HubFixture, tmp_path: Path) -> None:
    torch.manual_seed(3)
    model = AVBModel({**AVB, "id": "me/round-v1"})
    assert model.adversary is not None
    model.save_pretrained(tmp_path / "saved")
    assert {p.name for p in (tmp_path / "saved").iterdir()} >= {"config.json", "model.safetensors"}
    assert _same(AVBModel.from_pretrained(tmp_path / "saved"), model)
    url = model.push_to_hub("me/round")
    assert "me/round" in url
    for name in ("me/round", "hf-hub:me/round"):
        back = AVBModel.from_pretrained(name)
        assert _same(back, model) and back.source == name
    result = CliRunner().invoke(main, ["pull", "me/round", "--quiet"])  # the zoo pulls what the mixin pushed
    assert result.exit_code == 0, result.output
    url = model.save_pretrained(tmp_path / "again", push_to_hub=True, repo_id="me/round2")
    assert url and _same(avb_zoo.load("hf-hub:me/round2"), model)


def test_load_takes_what_the_sampler_takes(tmp_path: Path) -> None:
    from avb_zoo.runtime import Sampler

    by_id = avb_zoo.load("toy-avb")
    folder = Sampler("toy-avb").folder
    assert _same(by_id, avb_zoo.load(folder, with_adversary=False)) or by_id.adversary is None
    assert by_id.source == "toy-avb"
    assert "toy-avb-v1" in repr(by_id) and "source='toy-avb'" in repr(by_id)
    assert "graphs=['decoder', 'encoder', 'sampler']" in repr(Sampler("toy-avb"))


def test_tensors_for_people_are_detached() -> None:
    model = avb_zoo.load("toy-avb")
    assert not model.sample(3).requires_grad


def test_resolving_an_id_imports_no_torch() -> None:
    code = (
        "import sys, avb_zoo.hub.resolve, avb_zoo.catalogue.reference\n"
        "avb_zoo.hub.resolve.resolve('toy-avb', offline=True)\n"
        "avb_zoo.catalogue.reference.parse_reference('hf-hub:me/x@v1')\n"
        "from avb_zoo.runtime import Sampler\n"
        "Sampler('toy-avb').sample(2, seed=0)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "assert 'huggingface_hub.hf_api' not in sys.modules, 'a catalogue copy that matches needs no Hub client'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget(120))
    assert result.returncode == 0, result.stderr


def test_registry_knows_nothing_of_the_hub_and_workers_are_plain_modules() -> None:
    code = (
        "import sys, avb_zoo.catalogue.registry as r\n"
        "r.all_specs(); r.spec('toy-avb')\n"
        "hub = ('avb_zoo.hub.resolve', 'avb_zoo.hub.repo', 'avb_zoo.modelling.factory')\n"
        "assert not [m for m in sys.modules if m in hub or m.startswith('huggingface_hub')]\n"
        "import avb_zoo, avb_zoo.training.__main__, avb_zoo.evaluation.__main__\n"
        "from avb_zoo.training.trainer import train\n"
        "assert avb_zoo.train is train and avb_zoo.make.__module__ == 'avb_zoo.modelling.factory'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=budget(120))
    assert result.returncode == 0, result.stderr
    assert not Path(avb_zoo.__file__).with_name("train.py").exists()
    imports = [
        line.strip()
        for line in (Path(avb_zoo.__file__).with_name("catalogue") / "registry.py").read_text().splitlines()
        if line.strip().startswith(("from ", "import "))
    ]
    assert not [
        i
        for i in imports
        if i.startswith(("from avb_zoo.hub", "import avb_zoo.hub", "from avb_zoo.modelling", "import torch"))
    ]
    for module, command in (("avb_zoo.training", "train"), ("avb_zoo.evaluation", "eval")):
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=budget(120)
        )
        assert out.returncode == 0 and command.upper() not in out.stderr, out.stderr
