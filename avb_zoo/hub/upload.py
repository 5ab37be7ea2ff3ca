"""Publishing files to a Hub repo as one commit: the model's own files and those generated for it (the card).

Only the files the zoo defines, and only regular files inside the folder, are uploaded
(``avb_zoo.modelfile.files``); the others are reported. Building the card is the cards layer's job
(``avb_zoo.cards.publish``), which hands the generated files to ``upload``.
"""

from __future__ import annotations

from pathlib import Path

from avb_zoo.catalogue.names import check_repo_id, check_revision
from avb_zoo.errors import HubAuthError, HubUnreachable, shown
from avb_zoo.hub.client import Unreachable, call_error, hub_endpoint, hub_settings, is_connection_error
from avb_zoo.modelfile.files import select_push_files


def push_files(folder: Path) -> dict[str, Path]:
    """The files a push uploads, by path in the repo: the model, its ONNX graphs, their report and metrics."""
    return select_push_files(Path(folder))[0]


def push_skipped(folder: Path) -> dict[str, str]:
    """The files of ``folder`` a push leaves out, each with the reason."""
    return select_push_files(Path(folder))[1]


def check_target(repo_id: str, revision: str | None) -> None:
    """The repo id and branch of a push, checked before anything is built or sent."""
    check_repo_id(repo_id)
    if revision is not None:
        check_revision(revision)


def upload(
    files: dict[str, Path],
    generated: dict[str, bytes],
    repo_id: str,
    *,
    message: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Commit ``files`` (paths) and ``generated`` (bytes) to ``repo_id`` in one commit; returns its URL.

    ``token`` defaults to HF_TOKEN or the stored login; ``revision`` is a branch, created from main when it does
    not exist; the repo is created when missing.
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    from avb_zoo import __version__

    check_target(repo_id, revision)
    url = hub_endpoint(endpoint)
    api = HfApi(endpoint=url, token=token, library_name="avb-zoo", library_version=__version__)
    operations = [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path)) for rel, path in files.items()]
    operations += [CommitOperationAdd(path_in_repo=rel, path_or_fileobj=data) for rel, data in generated.items()]
    what = "the commit"
    try:
        with hub_settings(endpoint=url):
            what = "creating the repo"
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None and revision != "main":
                what = f"creating branch {shown(revision)}"
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            what = "the commit"
            info = api.create_commit(repo_id, operations, commit_message=message, revision=revision)
    except Exception as err:
        if is_connection_error(err):
            raise HubUnreachable(f"cannot reach the Hub at {url} to push {repo_id}") from None
        from huggingface_hub.errors import HfHubHTTPError

        status = getattr(getattr(err, "response", None), "status_code", None)
        if isinstance(err, HfHubHTTPError) and status in (401, 403):
            raise HubAuthError(
                f"the Hub at {url} refused to let this token write to {repo_id} ({what}): "
                "set HF_TOKEN to a token with write access"
            ) from None
        mapped = call_error(err, what, repo_id, revision or "main", url)
        if isinstance(mapped, Unreachable):
            raise HubUnreachable(f"pushing {repo_id} to {url} failed during {what}: {mapped}") from None
        raise mapped from None
    return info.commit_url
