"""What a model name means: a catalogue id, or a Hub repo (``hf-hub:ORG/NAME[@REV]`` or a bare ``ORG/NAME``).

``parse_reference`` is the one place that reads a user's text as a model: every command and API reads the name
once, here, and passes the result on (the registry and the Hub take it as it is). ``hf-hub:`` always means a Hub
repo (timm's convention). A bare ``ORG/NAME`` is a catalogue id when a registered namespace is called ORG, else a
Hub repo; ``note`` then says which was taken, so nobody is left guessing. Folders are the resolver's to recognise
first (a path that exists). Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from avb_zoo.catalogue.names import check_repo_id, check_revision
from avb_zoo.catalogue.registry import ModelId, all_specs
from avb_zoo.errors import InvalidRepoId, ModelNotFound, shown

HF_HUB_PREFIX = "hf-hub:"


@dataclass(frozen=True)
class HubRef:
    """A model that is a Hub repo outside the catalogue."""

    repo_id: str
    revision: str | None = None
    note: str | None = None  # a sentence for people when a bare ORG/NAME was taken as a repo

    @property
    def id(self) -> str:
        """The canonical name, ``hf-hub:ORG/NAME`` (the revision is reported on its own)."""
        return HF_HUB_PREFIX + self.repo_id


Reference = ModelId | HubRef


def _split(text: str) -> tuple[str, str | None]:
    repo, sep, revision = text.partition("@")
    return repo, (revision if sep else None)


def parse_hub_ref(text: str) -> HubRef:
    """``hf-hub:ORG/NAME[@REV]`` -> HubRef; a malformed one is an InvalidRepoId naming what is wrong."""
    repo, revision = _split(text[len(HF_HUB_PREFIX) :])
    check_repo_id(repo)
    if revision is not None:
        check_revision(revision)
    return HubRef(repo, revision)


def _namespaces() -> set[str]:
    return {s.namespace for s in all_specs() if s.namespace is not None}


def parse_reference(name: str | Reference) -> Reference:
    """A HubRef for a Hub repo, else the catalogue id (a ModelId, for the registry to look up).

    A reference passes through unchanged. Raises ModelNotFound for a name that is neither a well-formed
    catalogue id nor a valid repo id.
    """
    if isinstance(name, ModelId | HubRef):
        return name
    if not isinstance(name, str):
        raise ModelNotFound(f"a model id must be a string, got {type(name).__name__}")
    if name.startswith(HF_HUB_PREFIX):
        return parse_hub_ref(name)
    if "/" not in name or ":" in name:
        return ModelId.parse(name)
    repo, revision = _split(name)
    org = repo.split("/", 1)[0]
    if revision is None and org in _namespaces():
        return ModelId.parse(name)
    try:
        check_repo_id(repo)
        if revision is not None:
            check_revision(revision)
    except InvalidRepoId as err:
        raise ModelNotFound(
            f"{shown(name)} is neither a registered model (no namespace {shown(org)}) nor a Hub repo id: {err}"
        ) from None
    note = f"{shown(repo)} names no registered namespace: taken as the Hub repo {HF_HUB_PREFIX}{repo}"
    return HubRef(repo, revision, note)
