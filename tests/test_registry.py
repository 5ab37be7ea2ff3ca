"""The registry: ids, versions, did-you-mean errors, runtime-only make kwargs, plugins, catalogue validation."""

from __future__ import annotations

import importlib
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from zoo_helpers import TINY

import avb_zoo
import avb_zoo.catalogue.registry as reg
from avb_zoo.catalogue.recipes import load_catalogue
from avb_zoo.errors import (
    ConfigError,
    ModelNotFound,
    NameNotFound,
    NamespaceNotFound,
    RecipeNotFound,
    RegistrationError,
    VersionNotFound,
)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch):
    """The registry module with its table and load flags restored after the test."""
    reg.all_specs()  # the catalogue is read before the snapshot
    monkeypatch.setattr(reg, "registry", dict(reg.registry))
    monkeypatch.setattr(reg, "_plugins_loaded", True)
    return reg


def test_parse_ids() -> None:
    assert reg.parse_model_id("toy-avb-v1") == (None, "toy-avb", 1)
    assert reg.parse_model_id("acme/mnist-avb-ac-v12") == ("acme", "mnist-avb-ac", 12)
    assert reg.parse_model_id("toy-avb") == (None, "toy-avb", None)
    assert reg.get_model_id("acme", "x", 3) == "acme/x-v3"
    for bad in ("", "a/b/c-v1", "bad id-v1", "../x-v1", "/abs-v1"):
        with pytest.raises(ModelNotFound):
            reg.parse_model_id(bad)


def test_catalogue_is_registered_and_unversioned_means_latest(registry) -> None:
    ids = {s.id for s in registry.all_specs()}
    assert {"toy-avb-v1", "toy-vae-v1"} <= ids
    registry.register("toy-vae-v2", kwargs=TINY)  # a recipe only: nothing to pull or sample yet
    assert avb_zoo.spec("toy-vae").id == "toy-vae-v1"
    assert registry.resolution_note("toy-vae") == (
        "toy-vae means toy-vae-v1 (its latest version with weights; toy-vae-v2 is a recipe with none yet)"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        avb_zoo.spec("toy-vae-v1")  # nothing newer has weights: no warning
    registry.register("toy-vae-v3", kwargs=TINY, hub_repo_id="someone/toy-vae")
    assert avb_zoo.spec("toy-vae").id == "toy-vae-v3"
    assert registry.resolution_note("toy-vae") == "toy-vae means toy-vae-v3 (its latest version)"
    assert registry.resolution_note("toy-vae-v3") is None
    with pytest.warns(reg.ModelDeprecationWarning, match="toy-vae-v1 is out of date.*toy-vae-v3"):
        assert avb_zoo.spec("toy-vae-v1").id == "toy-vae-v1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        avb_zoo.spec("toy-vae-v3")  # the latest version does not warn


def test_not_found_errors_name_the_problem_and_suggest(registry) -> None:
    registry.register("acme/mnist-avb-v1", kwargs=TINY)
    registry.register("acme/mnist-avb-v3", kwargs=TINY)
    with pytest.raises(NameNotFound, match=r"'toy-abv' not found\. Did you mean: 'toy-avb'") as err:
        avb_zoo.spec("toy-abv-v1")
    assert isinstance(err.value, RecipeNotFound)  # callers catching the older error still work
    with pytest.raises(NameNotFound, match="It is registered as acme/mnist-avb"):
        avb_zoo.spec("mnist-avb-v1")
    with pytest.raises(NamespaceNotFound, match="Did you mean: 'acme'"):
        avb_zoo.spec("acne/mnist-avb-v1")
    with pytest.raises(NamespaceNotFound, match="entry-point group 'avb_zoo.models'"):
        avb_zoo.spec("zzz/mnist-avb-v1")
    with pytest.raises(
        VersionNotFound, match=r"acme/mnist-avb has v1 \(no weights\), v3 \(no weights\); use acme/mnist-avb-v3"
    ):
        avb_zoo.spec("acme/mnist-avb-v4")
    with pytest.raises(VersionNotFound, match="not found: acme/mnist-avb has v1.*; use acme/mnist-avb-v3"):
        avb_zoo.spec("acme/mnist-avb-v2")
    with pytest.raises(ModelNotFound, match="is not a model id"):
        avb_zoo.spec("no spaces-v1")


def test_register_checks_ids_and_configs(registry) -> None:
    with pytest.raises(RegistrationError, match="ids need a version"):
        registry.register("unversioned", kwargs=TINY)
    with pytest.raises(RegistrationError, match="latent_dim"):
        registry.register("bad-v1", kwargs={**TINY, "latent_dim": "two"})
    with pytest.raises(RegistrationError, match="repo id"):
        registry.register("bad-v1", kwargs=TINY, hub_repo_id="../etc")
    with pytest.raises(RegistrationError, match="sha256"):
        registry.register("bad-v1", kwargs=TINY, hub_repo_id="org/x", files={"config.json": "abc"})
    with pytest.raises(RegistrationError, match="file path"):
        registry.register("bad-v1", kwargs=TINY, hub_repo_id="org/x", files={"../x": "0" * 64})
    registry.register("dup-v1", kwargs=TINY)
    with pytest.warns(UserWarning, match="overriding model dup-v1"):
        registry.register("dup-v1", kwargs=TINY)
    with registry.namespace("acme"):
        assert registry.register("inside-v1", kwargs=TINY).id == "acme/inside-v1"
        with pytest.raises(RegistrationError, match="its own namespace"):
            registry.register("other/inside-v1", kwargs=TINY)


def test_pprint_registry_groups_by_namespace(registry) -> None:
    registry.register("acme/thing-v1", kwargs=TINY)
    text = avb_zoo.pprint_registry(disable_print=True)
    assert text is not None
    blocks = text.split("\n\n")
    assert blocks[0].startswith("===== avb-zoo =====") and "toy-avb-v1" in blocks[0]
    assert blocks[-1] == "===== acme =====\nacme/thing-v1"
    assert "acme" not in (avb_zoo.pprint_registry(exclude_namespaces=["acme"], disable_print=True) or "")


def test_make_takes_runtime_kwargs_only(registry) -> None:
    registry.register("tiny-v1", kwargs=TINY)
    model = avb_zoo.make("tiny-v1", pretrained=False, dtype="float64")
    assert next(model.parameters()).dtype == torch.float64 and not model.training
    with pytest.raises(ConfigError, match="latent_dim: the id and its revision fix the architecture"):
        avb_zoo.make("tiny-v1", pretrained=False, latent_dim=3)
    with pytest.raises(ConfigError, match="dtype 'int8'"):
        avb_zoo.make("tiny-v1", pretrained=False, dtype="int8")
    with pytest.raises(ConfigError, match="unknown device"):
        avb_zoo.make("tiny-v1", pretrained=False, device="tpu:0")
    with pytest.raises(Exception, match="no published weights"):
        avb_zoo.make("tiny-v1")


def test_make_loads_the_shipped_weights(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from avb_zoo.modelling.factory import load

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    shipped = avb_zoo.spec("toy-avb-v1").local_dir
    assert shipped is not None, "the package ships toy-avb"
    model = avb_zoo.make("toy-avb-v1", offline=True, cache_dir=tmp_path / "cache")
    reference = load(shipped)
    z = torch.randn(5, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.decode_logits(z), reference.decode_logits(z))
    trained = model.decode_logits(z)
    fresh = avb_zoo.make("toy-avb-v1", pretrained=False).decode_logits(z)
    assert not torch.equal(trained, fresh)


def test_module_prefix_imports_the_module_first(registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "zoo_extra_models.py").write_text(
        f"import avb_zoo\navb_zoo.register('extra/tiny-v0', kwargs={TINY!r})\n"
    )
    (tmp_path / "zoo_broken_models.py").write_text("raise RuntimeError('boom')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert avb_zoo.spec("zoo_extra_models:extra/tiny-v0").id == "extra/tiny-v0"
    assert avb_zoo.spec("extra/tiny-v0").kwargs["latent_dim"] == 2
    with pytest.raises(ModelNotFound, match="importing module 'zoo_broken_models'.*RuntimeError: boom"):
        avb_zoo.spec("zoo_broken_models:x-v0")
    with pytest.raises(ModelNotFound, match="importing module 'zoo_missing_module'"):
        avb_zoo.spec("zoo_missing_module:x-v0")
    for name in ("zoo_extra_models", "zoo_broken_models"):
        sys.modules.pop(name, None)


def _dist(site: Path, name: str, entry_points: str) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


def test_entry_point_plugins_load_lazily_and_failures_warn(
    registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "acme_zoo_plugin.py").write_text(
        textwrap.dedent(
            f"""
            import avb_zoo
            LOADED = []

            def register_models():
                LOADED.append(1)
                avb_zoo.register("tiny-v1", kwargs={TINY!r})
                avb_zoo.register("tiny-v2", kwargs={TINY!r})
            """
        )
    )
    (site / "broken_zoo_plugin.py").write_text(
        textwrap.dedent(
            f"""
            import avb_zoo

            def register_models():
                avb_zoo.register("half-v1", kwargs={TINY!r})
                raise ImportError("needs a package that is not installed")
            """
        )
    )
    _dist(site, "acme_zoo_plugin", "[avb_zoo.models]\nacme = acme_zoo_plugin:register_models\n")
    _dist(site, "broken_zoo_plugin", "[avb_zoo.models]\nbroken = broken_zoo_plugin:register_models\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setattr(reg, "_plugins_loaded", False)
    assert "acme_zoo_plugin" not in sys.modules  # nothing is loaded before the registry is used
    with pytest.warns(reg.PluginWarning, match="plugin 'broken'.*skipped: ImportError: needs a package"):
        ids = {s.id for s in reg.all_specs()}
    assert {"acme/tiny-v1", "acme/tiny-v2", "toy-avb-v1"} <= ids
    assert "broken/half-v1" not in ids  # a failing plugin's partial registrations are rolled back
    assert avb_zoo.spec("acme/tiny").id == "acme/tiny-v2"
    assert sys.modules["acme_zoo_plugin"].LOADED == [1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.all_specs()  # loaded once: no second warning, no second registration
    assert sys.modules["acme_zoo_plugin"].LOADED == [1]
    assert avb_zoo.make("acme/tiny-v2", pretrained=False).latent_dim == 2
    for name in ("acme_zoo_plugin", "broken_zoo_plugin"):
        sys.modules.pop(name, None)


CATALOGUE_ENTRY = """\
id = "tiny-vae-v1"
description = "test"

[model]
method = "vae"
x_dim = 4
latent_dim = 2
encoder = {{ name = "gaussian", hidden = [8] }}
decoder = {{ name = "bernoulli", hidden = [8] }}

[train]
data = "toy"
batch_size = 8
steps = 10
lr_primal = 1e-3
{extra}
"""
GOOD_HUB = f"""
[hub]
repo_id = "avb-zoo/tiny-vae"
revision = "main"
files = {{ "config.json" = "{"a" * 64}", "model.safetensors" = "{"b" * 64}" }}

[metrics]
log_likelihood = -1.39
"""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (GOOD_HUB.replace('repo_id = "avb-zoo/tiny-vae"\n', ""), r"tiny\.toml: \[hub\] is missing field 'repo_id'"),
        (GOOD_HUB.replace("avb-zoo/tiny-vae", "../tiny-vae"), r"tiny\.toml: \[hub\] repo id '\.\./tiny-vae'"),
        (GOOD_HUB.replace("avb-zoo/tiny-vae", "/etc/passwd"), r"tiny\.toml: \[hub\] repo id '/etc/passwd'"),
        (GOOD_HUB.replace('"main"', '"../main"'), r"tiny\.toml: \[hub\] revision '\.\./main'"),
        (GOOD_HUB.replace("b" * 64, "B" * 64), r"tiny\.toml: \[hub\] hub\.files\.'model\.safetensors' must be"),
        (GOOD_HUB.replace('"config.json"', '"../config.json"'), r"tiny\.toml: \[hub\] file path '\.\./config\.json'"),
        (GOOD_HUB.replace('"model.safetensors"', '"other.bin"'), r"hub\.files is missing 'model\.safetensors'"),
        (GOOD_HUB.replace('revision = "main"', 'mirror = "x"'), r"\[hub\] has unknown field\(s\) \['mirror'\]"),
        (GOOD_HUB.replace("-1.39", "[1]"), r"tiny\.toml: metrics\.log_likelihood must be a number or a string"),
    ],
)
def test_catalogue_hub_and_metrics_tables_are_validated(tmp_path: Path, extra: str, message: str) -> None:
    (tmp_path / "tiny.toml").write_text(CATALOGUE_ENTRY.format(extra=extra))
    with pytest.raises(ConfigError, match=message):
        load_catalogue(tmp_path)


def test_catalogue_entry_becomes_a_spec(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(CATALOGUE_ENTRY.format(extra=GOOD_HUB))
    (tmp_path / "tiny-vae").mkdir()
    (tmp_path / "tiny-vae" / "config.json").write_text("{}")
    recipe = load_catalogue(tmp_path)["tiny-vae-v1"]
    spec = reg.spec_from_recipe(recipe, tmp_path)
    assert (spec.hub_repo_id, spec.hub_revision) == ("avb-zoo/tiny-vae", "main")
    assert spec.files["config.json"] == "a" * 64 and spec.metrics == {"log_likelihood": -1.39}
    assert spec.local_dir == tmp_path / "tiny-vae" and spec.recipe is recipe
    assert spec.to_dict()["hub"]["repo_id"] == "avb-zoo/tiny-vae"


def test_catalogue_missing_field_names_file_and_field(tmp_path: Path) -> None:
    (tmp_path / "tiny.toml").write_text(CATALOGUE_ENTRY.format(extra="").replace('id = "tiny-vae-v1"\n', ""))
    with pytest.raises(ConfigError, match=r"tiny\.toml: missing field 'id'"):
        load_catalogue(tmp_path)


def test_the_shipped_catalogue_is_consistent() -> None:
    """Every [hub] entry with a shipped copy: the copy's files hash as the catalogue says, config matches [model]."""
    import json

    from avb_zoo.hub.hashes import sha256_file
    from avb_zoo.modelling.model import validate_config

    shipped = [s for s in reg.all_specs() if s.local_dir is not None]
    assert shipped, "at least one model ships with the package"
    for s in shipped:
        assert s.local_dir is not None
        for rel, digest in s.files.items():
            assert sha256_file(s.local_dir / rel) == digest, f"{s.id}: {rel}"
        stored = validate_config(json.loads((s.local_dir / "config.json").read_text()))
        assert stored == validate_config({**s.kwargs}), s.id
