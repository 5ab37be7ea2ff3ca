"""Training recipes from the catalogue: ``models/<name>.toml`` files, each one model id with its settings.

A recipe holds the model configuration (architecture, fixed by the id) and the training settings. Ids are
Gymnasium-style ``name-vN``; a name without a version means the latest version.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from avb_zoo.catalogue.names import check_repo_id, check_repo_path, check_revision, check_sha256
from avb_zoo.errors import ConfigError, InvalidRepoId, RecipeNotFound, shown
from avb_zoo.modelfile.model_config import validate_config

ID_PATTERN = re.compile(r"^(?P<name>[a-z0-9][a-z0-9_.-]*?)(?:-v(?P<version>\d+))?$")
DATA_SOURCES = ("toy", "mnist", "eight-schools")
LR_SCHEDULES = ("constant", "linear", "cosine")
PRECISIONS = ("float32", "bf16")  # the forward passes' matrix products (see avb_zoo.compute.precision)


@dataclass(frozen=True)
class TrainSettings:
    """How a recipe trains: Algorithm 1's settings (the reference code's defaults where it has them)."""

    data: str
    batch_size: int
    steps: int
    lr_primal: float
    lr_adversary: float = 1e-4
    betas_primal: tuple[float, float] = (0.5, 0.999)
    betas_adversary: tuple[float, float] = (0.5, 0.999)
    adversary_steps: int = 1
    loss_scale: float = 1.0
    checkpoint_every: int = 500
    binarize: bool = True
    lr_schedule: str = "constant"  # or "linear" / "cosine": a decay to 0 at ``steps``
    lr_decay_start: float = 0.0  # the fraction of ``steps`` after which the decay begins
    precision: str = "float32"  # the recipe's default; bf16 falls back to float32 where it cannot run

    @classmethod
    def from_mapping(cls, raw: Any, source: str) -> TrainSettings:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [train] must be a table")
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(f"{source}: [train] has unknown field(s) {unknown}; known: {sorted(known)}")
        kwargs: dict[str, Any] = {}
        for name, value in raw.items():
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        try:
            settings = cls(**kwargs)
        except TypeError as err:
            raise ConfigError(f"{source}: [train] {err}") from None
        settings.check(source)
        return settings

    def check(self, source: str) -> None:
        if self.data not in DATA_SOURCES:
            raise ConfigError(f"{source}: train.data = {shown(self.data)}; choose one of {list(DATA_SOURCES)}")
        for name in ("batch_size", "steps", "adversary_steps", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{source}: train.{name} must be a positive integer, got {shown(value)}")
        for name in ("lr_primal", "lr_adversary", "loss_scale"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"{source}: train.{name} must be a positive number, got {shown(value)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"{source}: train.precision = {shown(self.precision)}; choose one of {list(PRECISIONS)}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"{source}: train.lr_schedule = {shown(self.lr_schedule)}; choose one of {list(LR_SCHEDULES)}"
            )
        start = self.lr_decay_start
        if not isinstance(start, int | float) or isinstance(start, bool) or not 0 <= start < 1:
            raise ConfigError(f"{source}: train.lr_decay_start must be a number in [0, 1), got {shown(start)}")
        for name in ("betas_primal", "betas_adversary"):
            value = getattr(self, name)
            if len(value) != 2 or not all(isinstance(b, int | float) and 0 <= b < 1 for b in value):
                raise ConfigError(f"{source}: train.{name} must be two numbers in [0, 1), got {shown(list(value))}")


@dataclass(frozen=True)
class HubSource:
    """Where a model's files live on the Hub (one model per repo) and the sha256 of each file."""

    repo_id: str
    revision: str
    files: dict[str, str]

    @classmethod
    def from_mapping(cls, raw: Any, source: str) -> HubSource:
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: [hub] must be a table")
        unknown = sorted(set(raw) - {"repo_id", "revision", "files"})
        if unknown:
            known = ["files", "repo_id", "revision"]
            raise ConfigError(f"{source}: [hub] has unknown field(s) {unknown}; known: {known}")
        for key in ("repo_id", "files"):
            if key not in raw:
                raise ConfigError(f"{source}: [hub] is missing field {shown(key)}")
        files = raw["files"]
        if not isinstance(files, dict) or not files:
            raise ConfigError(f"{source}: hub.files must be a table of path = sha256, with at least config.json")
        try:
            repo_id = check_repo_id(raw["repo_id"])
            revision = check_revision(raw.get("revision", "main"))
            for path, digest in files.items():
                check_repo_path(path)
                check_sha256(digest, f"hub.files.{shown(path)}")
        except InvalidRepoId as err:
            raise ConfigError(f"{source}: [hub] {err}") from None
        for needed in ("config.json", "model.safetensors"):
            if needed not in files:
                raise ConfigError(f"{source}: hub.files is missing {shown(needed)}")
        return cls(repo_id, revision, dict(files))


def read_metrics(raw: Any, source: str) -> dict[str, Any]:
    """The ``[metrics]`` table: measured values by name (numbers, or strings such as "-89.6 +- 0.1")."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: [metrics] must be a table")
    for name, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{source}: metrics.{name} must be a number or a string, got {shown(value)}")
    return dict(raw)


@dataclass(frozen=True)
class Recipe:
    """One catalogue entry: id, description, model configuration and training settings."""

    id: str
    description: str
    model: dict[str, Any]
    train: TrainSettings
    source: Path
    extra: dict[str, Any] = field(default_factory=dict)
    hub: HubSource | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return split_id(self.id)[0]

    @property
    def version(self) -> int:
        version = split_id(self.id)[1]
        assert version is not None
        return version


def split_id(model_id: str) -> tuple[str, int | None]:
    """``'toy-avb-v1' -> ('toy-avb', 1)``; ``'toy-avb' -> ('toy-avb', None)``."""
    match = ID_PATTERN.match(model_id)
    if match is None:
        raise RecipeNotFound(f"{shown(model_id)} is not a model id (expected name-vN, e.g. toy-avb-v1)")
    version = match.group("version")
    return match.group("name"), int(version) if version is not None else None


def catalogue_dir() -> Path:
    """The folder of catalogue TOML files (``models/`` in a checkout, ``avb_zoo/models`` when installed)."""
    import avb_zoo.models

    return Path(avb_zoo.models.__file__).resolve().parent


def read_recipe(path: Path) -> Recipe:
    """Parse and validate one catalogue file; errors name the file and the field."""
    source = path.name
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    for key in ("id", "model", "train"):
        if key not in raw:
            raise ConfigError(f"{source}: missing field {shown(key)}")
    model_id = raw["id"]
    if not isinstance(model_id, str) or split_id(model_id)[1] is None:
        raise ConfigError(f"{source}: id must look like name-vN, got {shown(model_id)}")
    if not isinstance(raw["model"], dict):
        raise ConfigError(f"{source}: [model] must be a table")
    try:
        model = validate_config({**raw["model"], "id": model_id})
    except ConfigError as err:
        raise ConfigError(f"{source}: [model] {err}") from None
    train = TrainSettings.from_mapping(raw["train"], source)
    extra = {k: v for k, v in raw.items() if k not in ("id", "description", "model", "train")}
    hub = HubSource.from_mapping(raw["hub"], source) if "hub" in raw else None
    metrics = read_metrics(raw["metrics"], source) if "metrics" in raw else {}
    return Recipe(model_id, str(raw.get("description", "")), model, train, path, extra, hub, metrics)


def load_catalogue(folder: Path | None = None) -> dict[str, Recipe]:
    """Every recipe in the catalogue folder, by id."""
    recipes: dict[str, Recipe] = {}
    for path in sorted((folder or catalogue_dir()).glob("*.toml")):
        recipe = read_recipe(path)
        if recipe.id in recipes:
            raise ConfigError(
                f"{path.name}: id {shown(recipe.id)} is already defined in {recipes[recipe.id].source.name}"
            )
        recipes[recipe.id] = recipe
    return recipes


def find_recipe(model_id: str, catalogue: dict[str, Recipe] | None = None) -> Recipe:
    """The recipe for ``model_id``; a name without version resolves to its latest version."""
    recipes = load_catalogue() if catalogue is None else catalogue
    name, version = split_id(model_id)
    versions = {r.version: r for r in recipes.values() if r.name == name}
    if not versions:
        names = sorted({r.name for r in recipes.values()})
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean {shown(close[0])}?" if close else ""
        raise RecipeNotFound(f"no model named {shown(name)} in the catalogue.{hint} Known: {', '.join(names)}")
    if version is None:
        return versions[max(versions)]
    if version not in versions:
        raise RecipeNotFound(f"{shown(name)} has no version {version}; it has {sorted(versions)}")
    return versions[version]
