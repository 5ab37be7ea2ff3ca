"""``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``: huggingface_hub's ModelHubMixin conventions.

The names, signatures and files are those of ``huggingface_hub.ModelHubMixin`` (``config.json`` +
``model.safetensors`` in a folder or a repo), so the model is used the way any Hub model is. The methods are
written here rather than inherited because the mixin's own versions download without checking hashes, upload
whatever the folder holds and render a card of their own; these go through the zoo's one resolver
(``avb_zoo.hub.resolve``, every file hash-checked) and its allow-listed push with the generated card
(``avb_zoo.cards.publish``). ``from_pretrained`` builds ``cls``, so a subclass gets itself back. A folder written by
``save_pretrained`` is a model folder like any other: ``avb-zoo push`` publishes it and the zoo pulls it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, TypeVar

from avb_zoo.cards.publish import publish
from avb_zoo.errors import ConfigError
from avb_zoo.hub.resolve import resolve
from avb_zoo.modelling.weights import build_from_folder, save

T = TypeVar("T", bound="PretrainedMixin")


class PretrainedMixin:
    """Adds the Hub's three methods to AVBModel (see the module's docstring for why not the mixin itself)."""

    def save_pretrained(
        self,
        save_directory: str | Path,
        *,
        repo_id: str | None = None,
        push_to_hub: bool = False,
        **push_to_hub_kwargs: Any,
    ) -> str | None:
        """Write config.json and model.safetensors (+ adversary.safetensors) to ``save_directory``.

        With ``push_to_hub=True`` also publish it (to ``repo_id``, default the folder's name) and return the URL.
        """
        folder = Path(save_directory)
        save(self, folder)  # type: ignore[arg-type]
        if push_to_hub:
            return self.push_to_hub(repo_id or folder.resolve().name, **push_to_hub_kwargs)
        return None

    @classmethod
    def from_pretrained(
        cls: type[T],
        pretrained_model_name_or_path: str | Path,
        *,
        revision: str | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        token: str | bool | None = None,
        force_download: bool = False,
        **model_kwargs: Any,
    ) -> T:
        """The model in a folder, a Hub repo (``ORG/NAME``, ``hf-hub:ORG/NAME[@REV]``) or a catalogue id.

        Every downloaded file is checked against the catalogue's or the Hub's sha256, so ``force_download`` is
        accepted for compatibility and changes nothing; ``local_files_only`` serves from the cache only;
        ``token`` other than None is not used (HF_TOKEN or the stored login is). ``model_kwargs`` may only be
        ``device`` (the id fixes the architecture).
        """
        extra = sorted(set(model_kwargs) - {"device"})
        if extra:
            raise ConfigError(f"from_pretrained got {extra}: the repo's config.json fixes the model; only device")
        del token, force_download
        pulled = resolve(
            pretrained_model_name_or_path, revision=revision, cache_dir=cache_dir, offline=local_files_only
        )
        source = str(pulled.folder) if pulled.source == "folder" else str(pretrained_model_name_or_path)
        model = build_from_folder(cls, pulled.folder, hashes=pulled.hashes, source=source)  # type: ignore[type-var]
        if model_kwargs.get("device") is not None:
            model.to(model_kwargs["device"])  # type: ignore[attr-defined]
        return model  # type: ignore[return-value]

    def push_to_hub(
        self,
        repo_id: str,
        *,
        commit_message: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        branch: str | None = None,
        metrics: dict[str, Any] | None = None,
    ) -> str:
        """Publish this model to ``repo_id`` as one commit with the generated card; returns the commit URL."""
        with tempfile.TemporaryDirectory(prefix="avb-zoo-push-") as tmp:
            self.save_pretrained(tmp)
            if metrics is not None:
                (Path(tmp) / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
            return publish(
                tmp, self, repo_id, private=bool(private), revision=branch, commit_message=commit_message, token=token
            )
