"""From what names a model to a verified folder: the one resolver every command and API goes through.

``resolve(name_or_folder)`` takes a folder (the user's own, trusted as it is), a catalogue id (its local copy when
every file matches the catalogue's sha256, else pulled at the pinned revision) or a Hub repo (``hf-hub:ORG/NAME``,
pulled and checked against the Hub's own hashes), reads the name once, and returns a ``Pulled``: the folder, where
it came from, and the sha256 of the files that were checked, the only ones of that folder that may be opened.
``fetch`` is the download it uses, which ``avb-zoo pull`` calls directly to ask the Hub even when a copy exists.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from avb_zoo.errors import CheckpointError, HubNotFound, HubUnreachable, ModelNotFound, shown
from avb_zoo.hub.client import Pulled
from avb_zoo.modelfile.config_file import CONFIG_FILE
from avb_zoo.util.fileio import is_folder, is_present

if TYPE_CHECKING:
    from avb_zoo.catalogue.reference import Reference
    from avb_zoo.catalogue.registry import ModelSpec

# The catalogue and the pulls are imported where a name is read, not with the module: a command given a folder
# needs neither, and reading the catalogue's plugins costs tens of milliseconds.

logger = logging.getLogger("avb_zoo")

__all__ = ["Pulled", "fetch", "pull", "resolve"]


def fetch(
    model_id: str | Reference | ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Pulled:
    """A model's files from the Hub (or the cache, or the copy the package ships), saying which.

    ``model_id`` is a catalogue id or a Hub repo (``hf-hub:ORG/NAME[@REV]``, or ``ORG/NAME`` where no
    registered namespace is called ORG; see ``avb_zoo.catalogue.reference``). With an explicit ``revision`` the
    copy the package ships never stands in: it is the catalogue's pinned files, not that revision.
    """
    from avb_zoo.catalogue.names import check_revision
    from avb_zoo.catalogue.reference import HubRef, parse_reference
    from avb_zoo.catalogue.registry import ModelSpec, spec
    from avb_zoo.hub.pinned import fetch_pinned

    if revision is not None:
        check_revision(revision)
    ref = model_id if isinstance(model_id, ModelSpec) else parse_reference(model_id)
    if isinstance(ref, HubRef):
        from avb_zoo.hub.repo import fetch_repo

        return fetch_repo(ref, revision=revision, cache_dir=cache_dir, offline=offline, progress=progress)
    return fetch_pinned(spec(ref), revision=revision, cache_dir=cache_dir, offline=offline, progress=progress)


def pull(
    model_id: str | Reference | ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
) -> Path:
    """The local folder of ``model_id``'s files at ``revision`` (default: the catalogue's), each sha256-checked.

    Where the files came from is logged on the ``avb_zoo`` logger, as ``avb-zoo pull`` prints it: a warning when
    the copy the package ships stands in for the Hub's, so that nobody takes it for a fresh download.
    """
    pulled = fetch(model_id, revision=revision, cache_dir=cache_dir, offline=offline)
    level = logging.WARNING if pulled.source == "shipped" else logging.INFO
    logger.log(level, "%s from %s", pulled.id, pulled.detail)
    return pulled.folder


def _user_folder(path: Path) -> Pulled:
    if not (path / CONFIG_FILE).is_file():
        raise CheckpointError(f"{path} is not a model folder: it holds no {CONFIG_FILE}")
    return Pulled(str(path), path, "folder", f"the folder {path}", verified=False)


def resolve(
    name_or_folder: str | Path | Reference | ModelSpec,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    offline: bool = False,
    progress: bool = True,
) -> Pulled:
    """The verified folder that a folder path, a catalogue id or a Hub repo names (see the module's docstring).

    A catalogue id whose local copy (the cache, else the shipped copy) matches every pinned sha256 is served
    without a request to the Hub; otherwise it is pulled. A path that is no folder is named as such.
    """
    if not isinstance(name_or_folder, str | Path):  # a reference or a spec, already read
        return _resolve_reference(name_or_folder, name_or_folder, revision, cache_dir, offline, progress)
    path = Path(name_or_folder).expanduser()
    if is_folder(path):
        return _user_folder(path)
    text = str(name_or_folder)
    if is_present(path):
        raise CheckpointError(f"{path} is a file; expected a model folder holding {CONFIG_FILE} and onnx/")
    if isinstance(name_or_folder, Path) or text.startswith((".", "/", "~")):
        raise CheckpointError(f"{text} is not a model folder (no such directory)")
    from avb_zoo.catalogue.reference import parse_reference

    try:
        ref = parse_reference(text)
    except ModelNotFound as err:
        raise ModelNotFound(f"{err} ({shown(text)} is not a folder either)") from None
    return _resolve_reference(ref, text, revision, cache_dir, offline, progress)


def _resolve_reference(
    ref: Reference | ModelSpec,
    text: object,
    revision: str | None,
    cache_dir: str | Path | None,
    offline: bool,
    progress: bool,
) -> Pulled:
    from avb_zoo.catalogue.reference import HubRef
    from avb_zoo.catalogue.registry import spec
    from avb_zoo.hub.pinned import local_copy

    try:
        if not isinstance(ref, HubRef):
            found = spec(ref)
            if revision is None:
                local = local_copy(found, cache_dir)
                if local is not None:
                    return local
            ref = found
        pulled = fetch(ref, revision=revision, cache_dir=cache_dir, offline=offline, progress=progress)
    except (ModelNotFound, HubNotFound, HubUnreachable) as err:
        if isinstance(text, str):
            raise type(err)(f"{err} ({shown(text)} is not a folder either)") from None
        raise
    if pulled.note:
        logger.warning("%s", pulled.note)
    return pulled
