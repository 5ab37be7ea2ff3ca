"""The ``avb-zoo`` command (click). Thin: parses arguments, calls the library, prints."""

from __future__ import annotations

import click


@click.group()
def main() -> None:
    """Adversarial Variational Bayes model zoo."""
