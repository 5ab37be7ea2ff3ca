"""Lets a source checkout import ``avb_zoo.cli``, ``avb_zoo.export`` and ``avb_zoo.models``.

The repository keeps ``cli.py``, ``export/`` and ``models/`` beside the package (the layout the project
documents); the wheel places them inside ``avb_zoo/``. In a checkout, the package path is extended to the
repository root so both arrangements import the same names.
"""

from __future__ import annotations

from pathlib import Path


def checkout_root(package_dir: Path) -> Path | None:
    """The repository root when running from a source checkout, else None."""
    root = package_dir.parent
    if (root / "pyproject.toml").is_file() and (root / "cli.py").is_file() and not (package_dir / "cli.py").exists():
        return root
    return None
