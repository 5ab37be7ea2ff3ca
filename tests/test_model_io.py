"""Model folders: save/load round trips exactly; loading is strict and corrupt files fail with clear messages."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
import torch
from onnx_models import MNIST_CONFIG
from safetensors.torch import load_file, save_file
from toy_fixtures import single_thread  # noqa: F401 (autouse: one torch thread)
from zoo_helpers import TINY

from avb_zoo.compute.tensor_files import read_safetensors
from avb_zoo.errors import CheckpointError, ConfigError, OutputError
from avb_zoo.modelling.factory import load
from avb_zoo.modelling.model import AVBModel
from avb_zoo.modelling.weights import ADVERSARY_FILE, CONFIG_FILE, WEIGHTS_FILE, save

MNIST_AC = MNIST_CONFIG
TOY_VAE = TINY


def _trained_looking(config: dict, seed: int = 0) -> AVBModel:
    """A model whose parameters and batch-norm statistics are all away from their initial values."""
    torch.manual_seed(seed)
    model = AVBModel(config)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_()
            elif name.endswith("running_var"):
                b.uniform_(0.5, 2.0)
            elif name.endswith("num_batches_tracked"):
                b.fill_(17)
    return model.eval()


def _outputs(model: AVBModel, x: torch.Tensor) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        eps = model.sample_noise(x.shape[0], torch.Generator().manual_seed(1))
        z = model.encode(x, eps=eps)
        out = {"z": z, "logits": model.decode_logits(z)}
        if model.adversary is not None:
            out["t"] = model.adversary(x, z)
            out["moments"] = torch.cat(model.encoder_moments(x, n_noise=64, generator=torch.Generator().manual_seed(2)))
        return out


@pytest.mark.parametrize("config", [MNIST_AC, TOY_VAE], ids=["mnist-avb-ac", "toy-vae"])
def test_round_trip_gives_identical_outputs(tmp_path, config):
    model = _trained_looking(config)
    save(model, tmp_path, {"note": "round trip"})
    assert (tmp_path / ADVERSARY_FILE).exists() == (model.adversary is not None)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left behind
    loaded = load(tmp_path)
    assert not loaded.training
    assert loaded.config == model.config
    assert json.loads((tmp_path / CONFIG_FILE).read_text()) == model.config
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    x = torch.rand(3, model.x_dim, generator=torch.Generator().manual_seed(0)).round()
    for key, value in _outputs(model, x).items():
        assert torch.equal(value, _outputs(loaded, x)[key]), key
    _, meta = read_safetensors(tmp_path / WEIGHTS_FILE)
    assert meta["note"] == "round trip" and meta["format_version"] == "1"


def test_weights_file_holds_encoder_and_decoder_only(tmp_path):
    model = _trained_looking(MNIST_AC)
    save(model, tmp_path)
    prefixes = {k.split(".")[0] for k in load_file(tmp_path / WEIGHTS_FILE)}
    assert prefixes == {"encoder", "decoder"}
    assert {k.split(".")[0] for k in load_file(tmp_path / ADVERSARY_FILE)} == {"adversary"}
    # without the adversary file the model still loads (users of a trained model do not need it)
    (tmp_path / ADVERSARY_FILE).unlink()
    loaded = load(tmp_path)
    x = torch.rand(2, 784, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_outputs(model, x)["z"], _outputs(loaded, x)["z"])


@pytest.fixture
def saved(tmp_path) -> Path:
    save(_trained_looking(MNIST_AC), tmp_path)
    return tmp_path


def _rewrite(path: Path, edit) -> None:
    tensors = load_file(path)
    edit(tensors)
    save_file(tensors, path)


def test_strict_load_names_a_missing_tensor(saved):
    _rewrite(saved / WEIGHTS_FILE, lambda t: t.pop("decoder.body.deconv.0.bias"))
    with pytest.raises(CheckpointError, match=r"missing \['decoder\.body\.deconv\.0\.bias'\]") as err:
        load(saved)
    assert WEIGHTS_FILE in str(err.value)


def test_strict_load_names_an_unexpected_tensor(saved):
    _rewrite(saved / WEIGHTS_FILE, lambda t: t.update({"encoder.extra.weight": torch.zeros(2)}))
    with pytest.raises(CheckpointError, match=r"unexpected \['encoder\.extra\.weight'\]"):
        load(saved)


def test_strict_load_names_a_misshaped_tensor(saved):
    shape = tuple(load_file(saved / WEIGHTS_FILE)["encoder.z0.weight"].shape)
    _rewrite(saved / WEIGHTS_FILE, lambda t: t.update({"encoder.z0.weight": torch.zeros(shape[0] + 1, shape[1])}))
    wrong = rf"encoder\.z0\.weight \({shape[0] + 1}, {shape[1]}\) \(expected \({shape[0]}, {shape[1]}\)\)"
    with pytest.raises(CheckpointError, match=rf"mis-shaped \['{wrong}'\]"):
        load(saved)


def test_strict_load_checks_the_adversary_file_too(saved):
    _rewrite(saved / ADVERSARY_FILE, lambda t: t.pop("adversary.t_z_out.weight"))
    with pytest.raises(CheckpointError, match=r"adversary\.safetensors .*missing \['adversary\.t_z_out\.weight'\]"):
        load(saved)
    assert load(saved, with_adversary=False).adversary is None  # skipped on request: none, not a random one


def _header_len(path: Path) -> int:
    return struct.unpack("<Q", path.read_bytes()[:8])[0]


def test_truncated_safetensors_is_a_checkpoint_error(saved):
    path = saved / WEIGHTS_FILE
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])  # the header is intact, the data is cut
    with pytest.raises(CheckpointError, match=r"model\.safetensors is truncated or corrupt: tensor '.*' lies outside"):
        load(saved)
    path.write_bytes(raw[:5])
    with pytest.raises(CheckpointError, match=r"not a safetensors file \(only 5 bytes\)"):
        load(saved)


def test_header_claiming_more_bytes_than_the_file_has(saved):
    path = saved / WEIGHTS_FILE
    raw = path.read_bytes()
    path.write_bytes(struct.pack("<Q", len(raw) * 10) + raw[8:])
    with pytest.raises(CheckpointError, match=rf"header claims {len(raw) * 10} bytes, the file has {len(raw) - 8}"):
        load(saved)
    path.write_bytes(struct.pack("<Q", 2**63) + raw[8:])  # absurd sizes are refused before any allocation
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        load(saved)


def test_non_json_header(saved):
    path = saved / WEIGHTS_FILE
    raw = path.read_bytes()
    n = _header_len(path)
    path.write_bytes(raw[:8] + b"\xff" * n + raw[8 + n :])
    with pytest.raises(CheckpointError, match="header is not JSON"):
        load(saved)
    path.write_bytes(raw[:8] + b"[" + b" " * (n - 1) + raw[8 + n :])
    with pytest.raises(CheckpointError, match="header is not"):
        load(saved)


def test_config_problems(saved):
    cfg_path = saved / CONFIG_FILE
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "format_version": 99}))
    with pytest.raises(ConfigError, match="format_version"):
        load(saved)
    cfg_path.write_text(json.dumps({**cfg, "latent_dim": "four"}))
    with pytest.raises(ConfigError, match="latent_dim must be an integer"):
        load(saved)
    cfg_path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load(saved)
    cfg_path.unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        load(saved)


def test_missing_folder_and_missing_weights(tmp_path, saved):
    with pytest.raises(CheckpointError, match="is not a model folder"):
        load(tmp_path / "nowhere")
    (saved / WEIGHTS_FILE).unlink()
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not exist"):
        load(saved)


def test_save_to_an_unwritable_place_is_an_output_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="cannot write to"):
        save(_trained_looking(TOY_VAE), blocker / "model")
    assert blocker.read_text() == "not a folder"
