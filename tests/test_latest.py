"""One meaning of "latest": the version a name without one resolves to (the newest with weights) is the one
``list`` marks, the one every suggestion names; a version that never existed is "not found", never "removed",
and a name typed in the wrong case is pointed at the registered id."""

from __future__ import annotations

import pytest
from avb_zoo.cli import main
from click.testing import CliRunner

import avb_zoo
from avb_zoo.errors import ModelNotFound


def _cli(*args: str):
    return CliRunner().invoke(main, list(args))


def test_list_marks_as_latest_the_version_a_bare_name_resolves_to() -> None:
    from avb_zoo.catalogue.registry import is_latest

    lines = _cli("list").output.splitlines()
    latest = {line.split()[0] for line in lines[1:] if line.split()[1] == "yes"}
    assert "mnist-avb-ac-v3" in latest and not {"mnist-avb-ac-v1", "mnist-avb-ac-v2"} & latest
    assert avb_zoo.spec("mnist-avb-ac").id == "mnist-avb-ac-v3"
    for line in lines[1:]:
        model_id = line.split()[0]
        found = avb_zoo.spec(model_id)
        bare = model_id.rsplit("-v", 1)[0]
        assert (line.split()[1] == "yes") == (avb_zoo.spec(bare).id == model_id) == is_latest(found), line


def test_a_version_past_the_last_suggests_the_one_with_weights() -> None:
    result = _cli("sample", "mnist-avb-ac-v4", "--out", "x.png")
    assert result.exit_code == 1
    assert "use mnist-avb-ac-v3" in result.output and "use mnist-avb-ac-v2" not in result.output
    assert "v2 (a recipe, no weights yet)" in result.output


def test_a_version_without_weights_points_at_one_with_weights_and_at_train() -> None:
    result = _cli("sample", "mnist-avb-ac-v2", "--out", "x.png")
    assert result.exit_code == 1
    assert "use mnist-avb-ac-v3" in result.output and "avb-zoo train mnist-avb-ac-v2" in result.output


def test_a_version_that_never_existed_is_not_called_removed() -> None:
    with pytest.raises(ModelNotFound) as caught:
        avb_zoo.spec("toy-avb-v0")
    assert "removed" not in str(caught.value) and "deprecated" not in str(caught.value)
    assert "not found: toy-avb has v1; use toy-avb-v1" in str(caught.value)


@pytest.mark.parametrize(("typed", "meant"), [("MNIST-AVB-AC", "mnist-avb-ac"), ("Toy-AVB-V1", "toy-avb-v1")])
def test_did_you_mean_ignores_case(typed: str, meant: str) -> None:
    result = _cli("info", typed)
    assert result.exit_code == 1
    assert f"Did you mean: '{meant}'" in result.output
    assert len(result.output.strip().splitlines()) == 1
