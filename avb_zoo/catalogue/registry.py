"""The model registry, in the manner of Gymnasium's: ``register``, ``spec``, ``make``, ``pprint_registry``.

Ids are ``[namespace/]name-vN``. The catalogue (``models/<name>.toml``) fills the registry on first use;
third-party packages add models through the entry-point group ``avb_zoo.models`` (the entry-point name is
their namespace; a failing plugin is skipped with a warning), and ``"module:name-vN"`` imports ``module``
first so that it can register itself. An id without a version means the latest one that has weights (the
latest of all when none has: a newer version may be a recipe whose weights are not published yet); asking for
an older version than that works but warns. The registry only names and describes models: building one
(``make``) lives in ``avb_zoo.modelling.factory`` and fetching files in ``avb_zoo.hub``, as timm keeps
``_registry``, ``_factory`` and ``_hub`` apart. Both sit in layers above the catalogue, so this module imports
neither: it reaches a model's constructor only through its entry point, a ``module:attribute`` string loaded
when a model is built, the same way it reaches a plugin's.

Importing this module is cheap (no torch); the catalogue and plugins are read lazily.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import importlib
import logging
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from avb_zoo.catalogue.names import check_repo_id, check_repo_path, check_revision, check_sha256
from avb_zoo.errors import (
    ConfigError,
    InvalidRepoId,
    ModelNotFound,
    NameNotFound,
    NamespaceNotFound,
    RegistrationError,
    VersionNotFound,
    shown,
)

if TYPE_CHECKING:
    from torch import nn

    from avb_zoo.catalogue.recipes import Recipe

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelId",
    "ModelSpec",
    "ModelDeprecationWarning",
    "PluginWarning",
    "namespace",
    "parse_model_id",
    "pprint_registry",
    "register",
    "registry",
    "spec",
]

logger = logging.getLogger("avb_zoo")

ENTRY_POINT_GROUP = "avb_zoo.models"
DEFAULT_ENTRY_POINT = "avb_zoo.modelling.factory:avb_model"
FACTORY = "avb_zoo.modelling.factory:make"  # what ModelSpec.make calls, loaded like any entry point
ID_RE = re.compile(
    r"^(?:(?P<namespace>[A-Za-z0-9_][\w.-]*)/)?(?P<name>[A-Za-z0-9_][\w.-]*?)(?:-v(?P<version>\d+))?$", re.ASCII
)


class ModelDeprecationWarning(DeprecationWarning):
    """An older version of a model was asked for while a newer one is registered."""


class PluginWarning(UserWarning):
    """A package in the ``avb_zoo.models`` entry-point group failed to load; the zoo goes on without it."""


# Shown once per place, like Gymnasium's deprecation logger (Python hides DeprecationWarning by default).
warnings.filterwarnings("default", category=ModelDeprecationWarning)


def parse_model_id(model_id: str) -> tuple[str | None, str, int | None]:
    """``'acme/mnist-avb-v2' -> ('acme', 'mnist-avb', 2)``; namespace and version are optional."""
    match = ID_RE.match(model_id) if isinstance(model_id, str) else None
    if match is None:
        raise ModelNotFound(
            f"{shown(model_id)} is not a model id: expected [namespace/]name-vN of letters, digits, '_', '-' and '.' "
            "(e.g. toy-avb-v1)"
        )
    version = match.group("version")
    return match.group("namespace"), match.group("name"), int(version) if version is not None else None


def get_model_id(ns: str | None, name: str, version: int | None) -> str:
    """The inverse of parse_model_id."""
    return (f"{ns}/" if ns else "") + name + (f"-v{version}" if version is not None else "")


@dataclass(frozen=True)
class ModelId:
    """A catalogue id as read once from what the user typed: ``[module:][namespace/]name[-vN]``.

    ``version`` None means the latest version with weights; ``module`` is imported before the lookup so that it
    can register its models. ``spec`` takes a ModelId as it is, without reading the text again.
    """

    text: str
    namespace: str | None
    name: str
    version: int | None
    module: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelId:
        """Read ``text`` as a catalogue id; a malformed one is a ModelNotFound naming the expected form."""
        if not isinstance(text, str):
            raise ModelNotFound(f"a model id must be a string, got {type(text).__name__}")
        module, sep, rest = text.partition(":")
        ns, name, version = parse_model_id(rest if sep else text)
        return cls(text, ns, name, version, module if sep else None)

    @property
    def bare(self) -> str:
        """The id without its module prefix."""
        return get_model_id(self.namespace, self.name, self.version)


@dataclass
class ModelSpec:
    """Everything that defines a model id: how to build it, where its weights are, and what was measured.

    ``kwargs`` is the model configuration given to the entry point (for avb-zoo models, the config.json
    content); ``files`` maps every file of the published model to its sha256; ``local_dir`` is the copy the
    package ships, if any.
    """

    id: str
    entry_point: str | Callable[..., Any] = DEFAULT_ENTRY_POINT
    kwargs: dict[str, Any] = field(default_factory=dict)
    hub_repo_id: str | None = None
    hub_revision: str | None = None
    files: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    recipe: Recipe | None = None
    local_dir: Path | None = None
    namespace: str | None = field(init=False)
    name: str = field(init=False)
    version: int = field(init=False)

    def __post_init__(self) -> None:
        try:
            ns, name, version = parse_model_id(self.id)
        except ModelNotFound as err:
            raise RegistrationError(str(err)) from None
        if version is None:
            raise RegistrationError(f"cannot register {shown(self.id)}: ids need a version, e.g. {self.id}-v1")
        self.namespace, self.name, self.version = ns, name, version
        if not (isinstance(self.entry_point, str) or callable(self.entry_point)):
            raise RegistrationError(f"{self.id}: entry_point must be 'module:attribute' or a callable")
        if not isinstance(self.kwargs, dict):
            raise RegistrationError(f"{self.id}: kwargs must be a dict, got {type(self.kwargs).__name__}")
        try:
            if self.hub_repo_id is not None:
                check_repo_id(self.hub_repo_id)
            if self.hub_revision is not None:
                check_revision(self.hub_revision)
            for path, digest in self.files.items():
                check_repo_path(path)
                check_sha256(digest, f"the sha256 of {shown(path)}")
        except InvalidRepoId as err:
            raise RegistrationError(f"{self.id}: {err}") from None
        if self.local_dir is not None:
            self.local_dir = Path(self.local_dir)

    @property
    def has_weights(self) -> bool:
        """Whether make() can load trained weights (from the Hub or the shipped copy)."""
        return self.hub_repo_id is not None or self.local_dir is not None

    def make(self, **kwargs: Any) -> nn.Module:
        """``avb_zoo.make(self, **kwargs)``; construction lives in the factory, reached through its entry point."""
        return load_entry_point(FACTORY)(self, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description (entry points that are callables appear by qualified name)."""
        ep = self.entry_point
        return {
            "id": self.id,
            "namespace": self.namespace,
            "name": self.name,
            "version": self.version,
            "entry_point": ep if isinstance(ep, str) else f"{ep.__module__}:{ep.__qualname__}",
            "kwargs": copy.deepcopy(self.kwargs),
            "hub": {"repo_id": self.hub_repo_id, "revision": self.hub_revision, "files": dict(self.files)},
            "metrics": dict(self.metrics),
            "description": self.description,
            "recipe": str(self.recipe.source) if self.recipe is not None else None,
            "shipped": str(self.local_dir) if self.local_dir is not None else None,
        }

    def pprint(self, disable_print: bool = False) -> str | None:
        """A short human-readable summary."""
        lines = [f"id={self.id}"]
        if self.description:
            lines.append(f"description={self.description}")
        if self.hub_repo_id:
            lines.append(f"hub={self.hub_repo_id}@{self.hub_revision or 'main'} ({len(self.files)} files hashed)")
        if self.local_dir is not None:
            lines.append(f"shipped={self.local_dir}")
        for key, value in self.metrics.items():
            lines.append(f"metrics.{key}={value}")
        text = "\n".join(lines)
        if disable_print:
            return text
        print(text)
        return None


registry: dict[str, ModelSpec] = {}
_current_namespace: str | None = None
_lock = threading.RLock()
_catalogue_loaded = False
_plugins_loaded = False


def spec_from_recipe(recipe: Recipe, catalogue: Path | None = None) -> ModelSpec:
    """The registry entry of one catalogue file; the package's copy of the weights, if shipped, is used offline."""
    from avb_zoo.catalogue.recipes import catalogue_dir

    folder = catalogue or catalogue_dir()
    local = next(
        (d for d in (folder / recipe.id, folder / recipe.name) if (d / "config.json").is_file()),
        None,
    )
    hub = recipe.hub
    return ModelSpec(
        id=recipe.id,
        kwargs=copy.deepcopy(recipe.model),
        hub_repo_id=hub.repo_id if hub else None,
        hub_revision=hub.revision if hub else None,
        files=dict(hub.files) if hub else {},
        metrics=dict(recipe.metrics),
        description=recipe.description,
        recipe=recipe,
        local_dir=local if hub else None,  # without hashes a shipped copy could not be checked
    )


def _load_catalogue() -> None:
    global _catalogue_loaded
    if _catalogue_loaded:
        return
    with _lock:
        if _catalogue_loaded:
            return
        from avb_zoo.catalogue.recipes import load_catalogue

        specs = [spec_from_recipe(r) for r in load_catalogue().values()]  # raises naming the file and field
        for s in specs:
            registry.setdefault(s.id, s)
        _catalogue_loaded = True


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    """The group's entry points, once each (a package seen twice on sys.path is loaded once).

    importlib.metadata is imported here, not with the module: it costs tens of milliseconds, and a command
    given a folder never reads the catalogue."""
    import importlib.metadata

    seen: dict[tuple[str, str], importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        seen.setdefault((ep.name, ep.value), ep)
    return list(seen.values())


def _load_plugins() -> None:
    """Load every plugin once; one that fails is rolled back and reported as a PluginWarning."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        _load_catalogue()
        for ep in _entry_points():
            before = dict(registry)
            try:
                with namespace(None if ep.name == "__root__" else ep.name):
                    obj = ep.load()
                    if callable(obj):
                        obj()
            except Exception as err:  # a broken third-party package must not break the zoo
                registry.clear()
                registry.update(before)
                warnings.warn(
                    f"avb-zoo plugin {shown(ep.name)} ({ep.value}) could not be loaded and was skipped: "
                    f"{type(err).__name__}: {err}",
                    PluginWarning,
                    stacklevel=3,
                )


def reload_plugins() -> None:
    """Read the entry-point group again (after installing a plugin in a running process)."""
    global _plugins_loaded
    with _lock:
        _plugins_loaded = False
    _load_plugins()


@contextlib.contextmanager
def namespace(ns: str | None) -> Iterator[None]:
    """Models registered inside get ``ns/`` in front of their id (used for plugins)."""
    global _current_namespace
    old, _current_namespace = _current_namespace, ns
    try:
        yield
    finally:
        _current_namespace = old


def register(
    id: str,  # noqa: A002  (Gymnasium's name)
    entry_point: str | Callable[..., Any] | None = None,
    kwargs: dict[str, Any] | None = None,
    *,
    hub_repo_id: str | None = None,
    hub_revision: str | None = None,
    files: dict[str, str] | None = None,
    metrics: dict[str, Any] | None = None,
    description: str = "",
    local_dir: str | Path | None = None,
) -> ModelSpec:
    """Add a model id to the registry (inside a plugin, its namespace is added in front of the id).

    With the default entry point, ``kwargs`` is an avb-zoo model configuration and is validated now.
    Registering an id that exists replaces it with a warning.
    """
    _load_catalogue()
    if not isinstance(id, str):
        raise RegistrationError(f"a model id must be a string, got {type(id).__name__}")
    try:
        ns, name, version = parse_model_id(id)
    except ModelNotFound as err:
        raise RegistrationError(str(err)) from None
    if _current_namespace is not None:
        if ns is not None and ns != _current_namespace:
            raise RegistrationError(
                f"plugin {shown(_current_namespace)} may only register ids in its own namespace, not {shown(id)}"
            )
        id = get_model_id(_current_namespace, name, version)  # noqa: A001
    entry = DEFAULT_ENTRY_POINT if entry_point is None else entry_point
    config = copy.deepcopy(kwargs or {})
    if entry == DEFAULT_ENTRY_POINT:
        from avb_zoo.modelfile.model_config import validate_config

        try:
            config = validate_config({**config, "id": config.get("id", id)})
        except ConfigError as err:
            raise RegistrationError(f"{id}: {err}") from None
    new = ModelSpec(
        id=id,
        entry_point=entry,
        kwargs=config,
        hub_repo_id=hub_repo_id,
        hub_revision=hub_revision,
        files=dict(files or {}),
        metrics=dict(metrics or {}),
        description=description,
        local_dir=Path(local_dir) if local_dir is not None else None,
    )
    with _lock:
        if id in registry:
            warnings.warn(f"overriding model {id} already in the registry", UserWarning, stacklevel=2)
        registry[id] = new
    return new


def _versions(ns: str | None, name: str) -> list[int]:
    return sorted(s.version for s in registry.values() if s.namespace == ns and s.name == name)


def _default_version(ns: str | None, name: str) -> int:
    """What a name without a version means: its latest version that has weights (a newer version that is a
    recipe only, with nothing published yet, cannot be pulled or sampled), else its latest version."""
    versions = _versions(ns, name)
    released = [v for v in versions if registry[get_model_id(ns, name, v)].has_weights]
    return (released or versions)[-1]


def is_latest(found: ModelSpec) -> bool:
    """Whether ``found`` is what its name without a version means: the one meaning of "latest" that resolution,
    ``avb-zoo list`` and every suggestion share (the newest version with weights, else the newest recipe)."""
    _load_catalogue()
    _load_plugins()
    return _default_version(found.namespace, found.name) == found.version


def usable_instead(found: ModelSpec) -> str:
    """For a version with no weights: ``; use NAME-vK (...)`` naming the version its bare name means, when that one
    has weights, and the command that trains this one from its recipe."""
    _load_catalogue()
    _load_plugins()
    default = registry[get_model_id(found.namespace, found.name, _default_version(found.namespace, found.name))]
    parts = []
    if default.has_weights and default.id != found.id:
        parts.append(f"use {default.id} (the latest version with weights)")
    if found.recipe is not None:
        parts.append(f"train it: avb-zoo train {found.id}")
    return "; " + ", or ".join(parts) if parts else ""


def _hint(word: str, choices: list[str]) -> str:
    """A did-you-mean for ``word`` among ``choices``, ignoring case (``MNIST-AVB-AC`` finds ``mnist-avb-ac``)."""
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(choice.lower(), choice)
    close = difflib.get_close_matches(word.lower(), list(lowered), n=3, cutoff=0.6)
    return f" Did you mean: {', '.join(repr(lowered[c]) for c in close)}?" if close else ""


def _lower_case_id(model_id: str) -> str | None:
    """``model_id`` in lower case when that is a registered id or name (``Toy-AVB-V1`` -> ``toy-avb-v1``)."""
    try:
        ns, name, version = parse_model_id(model_id.lower())
    except ModelNotFound:
        return None
    versions = _versions(ns, name)
    if versions and (version is None or version in versions):
        return get_model_id(ns, name, version)
    return None


def _version_list(ns: str | None, name: str) -> str:
    """``v1, v2 (a recipe, no weights yet)``: every version, the ones that cannot be pulled said so."""
    marks = []
    for v in _versions(ns, name):
        found = registry[get_model_id(ns, name, v)]
        why = (
            "" if found.has_weights else " (a recipe, no weights yet)" if found.recipe is not None else " (no weights)"
        )
        marks.append(f"v{v}{why}")
    return ", ".join(marks)


def _not_found(model_id: str, ns: str | None, name: str, version: int | None) -> ModelNotFound:
    """The most specific error for an id that is not registered, with a "did you mean" hint that points only at
    what can be used: for a missing version, the version the bare name means."""
    see = " Run `avb-zoo list` (or avb_zoo.pprint_registry()) to see every registered model."
    namespaces = sorted({s.namespace for s in registry.values() if s.namespace is not None})
    if ns is not None and ns not in namespaces:
        hint = _hint(ns, namespaces) or (
            f" Is the package that provides it installed? Plugins register through the entry-point group "
            f"{shown(ENTRY_POINT_GROUP)}."
        )
        return NamespaceNotFound(f"namespace {shown(ns)} not found (in {shown(model_id)}).{hint}")
    versions = _versions(ns, name)
    if not versions:
        right = _lower_case_id(model_id)
        if right is not None:  # only the case differs: name the id as it is registered
            return NameNotFound(f"model {shown(model_id)} not found: ids are lower case. Did you mean: {shown(right)}?")
        names = sorted({s.name for s in registry.values() if s.namespace == ns})
        hint = _hint(name, names)
        elsewhere = sorted(get_model_id(s.namespace, s.name, None) for s in registry.values() if s.name == name)
        if elsewhere:
            hint += f" It is registered as {', '.join(sorted(set(elsewhere)))}."
        where = f" in namespace {shown(ns)}" if ns is not None else ""
        return NameNotFound(f"model {shown(name)} not found{where}.{hint}{see}")
    latest = get_model_id(ns, name, _default_version(ns, name))
    have = _version_list(ns, name)
    return VersionNotFound(f"{shown(model_id)} not found: {get_model_id(ns, name, None)} has {have}; use {latest}")


def _import_module(ref: ModelId) -> None:
    """``'pkg.mod:name-v0'``: import ``pkg.mod``, which registers its models."""
    try:
        importlib.import_module(str(ref.module))
    except Exception as err:  # the module is user code: any failure becomes one clear message
        raise ModelNotFound(
            f"{shown(ref.text)}: importing module {shown(ref.module)} to register its models failed: "
            f"{type(err).__name__}: {err}"
        ) from None


def spec(model_id: str | ModelId | ModelSpec) -> ModelSpec:
    """The ModelSpec of an id; ``name`` alone means its latest version with weights (else its latest), an
    older version than that warns."""
    if isinstance(model_id, ModelSpec):
        return model_id
    ref = model_id if isinstance(model_id, ModelId) else ModelId.parse(model_id)
    if ref.module is not None:
        _import_module(ref)
    model_id = ref.bare if ref.module is not None else ref.text
    _load_catalogue()
    _load_plugins()
    ns, name, version = ref.namespace, ref.name, ref.version
    versions = _versions(ns, name)
    if version is None and versions:
        default = get_model_id(ns, name, _default_version(ns, name))
        logger.info("%s means %s", model_id, default)
        return registry[default]
    found = registry.get(get_model_id(ns, name, version))
    if found is None:
        raise _not_found(model_id, ns, name, version)
    default = _default_version(ns, name)
    if version is not None and version < default:
        warnings.warn(
            f"{model_id} is out of date: consider upgrading to {get_model_id(ns, name, default)}",
            ModelDeprecationWarning,
            stacklevel=2,
        )
    return found


def resolution_note(model_id: str | ModelId, found_id: str | None = None) -> str | None:
    """A sentence for commands to print when ``model_id`` had no version and stood for the latest one.

    ``found_id``: the id it was resolved to, when the caller has it (then the registry is not searched again).
    """
    try:
        ref = model_id if isinstance(model_id, ModelId) else ModelId.parse(model_id)
    except ModelNotFound:
        return None
    if ref.version is not None:
        return None
    bare = ref.bare
    try:
        found = registry[found_id] if found_id in registry else spec(ref)
        newest = get_model_id(found.namespace, found.name, _versions(found.namespace, found.name)[-1])
        if newest == found.id:
            return f"{bare} means {found.id} (its latest version)"
        return f"{bare} means {found.id} (its latest version with weights; {newest} is a recipe with none yet)"
    except ModelNotFound:  # not a catalogue id (a Hub repo, or a mistake the command itself will name)
        return None


def all_specs() -> list[ModelSpec]:
    """Every registered spec (catalogue and plugins), sorted by namespace, name and version."""
    _load_catalogue()
    _load_plugins()
    return sorted(registry.values(), key=lambda s: (s.namespace or "", s.name, s.version))


def pprint_registry(
    print_registry: dict[str, ModelSpec] | None = None,
    *,
    num_cols: int = 3,
    exclude_namespaces: list[str] | None = None,
    disable_print: bool = False,
) -> str | None:
    """The registered ids grouped by namespace, in columns (as Gymnasium's ``pprint_registry``)."""
    if print_registry is None:
        all_specs()
        print_registry = registry
    groups: dict[str, list[str]] = {}
    for s in print_registry.values():
        ns = s.namespace or "avb-zoo"
        if exclude_namespaces and ns in exclude_namespaces:
            continue
        groups.setdefault(ns, []).append(s.id)
    width = max((len(i) for ids in groups.values() for i in ids), default=0) + 2
    blocks = []
    for ns in sorted(groups, key=lambda n: (n != "avb-zoo", n)):
        ids = sorted(groups[ns])
        rows = ["".join(i.ljust(width) for i in ids[k : k + num_cols]).rstrip() for k in range(0, len(ids), num_cols)]
        blocks.append(f"===== {ns} =====\n" + "\n".join(rows))
    text = "\n\n".join(blocks)
    if disable_print:
        return text
    print(text)
    return None


def load_entry_point(entry_point: str | Callable[..., Any]) -> Callable[..., Any]:
    """``'pkg.module:attr'`` -> the attribute (a callable is returned as it is)."""
    if callable(entry_point):
        return entry_point
    module, _, attr = entry_point.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split(".") if attr else []:
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise RegistrationError(f"entry point {shown(entry_point)} cannot be loaded: {err}") from None
    if not callable(obj):
        raise RegistrationError(f"entry point {shown(entry_point)} is not callable")
    return obj
