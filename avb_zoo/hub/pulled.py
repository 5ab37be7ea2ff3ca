"""What the resolver hands on: a verified model folder and where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Pulled:
    """Where a model's folder is and where it came from."""

    id: str
    folder: Path
    source: str  # "hub", "cache", "shipped" or "folder"
    detail: str  # a sentence for people
    repo_id: str | None = None
    revision: str | None = None
    commit: str | None = None
    verified: bool = True
    files: dict[str, str] | None = None  # the sha256 of each file that was checked (the only ones to open)
    note: str | None = None  # how the name was read, when that needs saying (a bare ORG/NAME taken as a repo)

    @property
    def hashes(self) -> dict[str, str] | None:
        """The sha256 of each file that was checked, the only files of the folder that may be opened; None for a
        folder nobody vouched for file by file (the user's own, or a plugin model without hashes)."""
        return dict(self.files) if self.verified and self.files else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "folder": str(self.folder),
            "source": self.source,
            "detail": self.detail,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "commit": self.commit,
            "verified": self.verified,
            "sha256": dict(self.files) if self.files else None,
            "note": self.note,
        }
