"""The zoo's commands: ``list``, ``info``, ``pull`` and ``push`` (the catalogue and the Hub)."""

from __future__ import annotations

import json
from typing import Any

import click

from avb_zoo.commands.support import example, print_json

ERROR_SUFFIXES = {"_mc_se": "MC s.e.", "_spread_se": "spread s.e."}


def _metrics_text(metrics: dict[str, Any]) -> str:
    """``name=value (MC s.e. a, spread s.e. b)`` for each metric; ``<name>_mc_se`` is the AIS Monte Carlo error,
    ``<name>_spread_se`` the spread over examples (std / sqrt(n)); an ``*_estimate`` is not a bound."""
    parts = []
    for name, value in metrics.items():
        if any(name.endswith(suffix) and name[: -len(suffix)] in metrics for suffix in ERROR_SUFFIXES):
            continue
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        errors = [
            f"{label} {metrics[name + suffix]:.2g}"
            for suffix, label in ERROR_SUFFIXES.items()
            if isinstance(metrics.get(name + suffix), float)
        ]
        if name.endswith("_estimate"):
            errors.append("an estimate, not a bound")
        parts.append(f"{name}={text}" + (f" ({', '.join(errors)})" if errors else ""))
    return ", ".join(parts) or "-"


@example("avb-zoo list")
@click.command(name="list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def list_models(as_json: bool) -> None:
    """List the registered models (catalogue and plugins) with versions, weights and metrics.

    LATEST marks the version a name without one means: the newest with weights (else the newest recipe).
    """
    from avb_zoo.catalogue.registry import all_specs, is_latest

    specs = all_specs()
    if as_json:
        print_json([s.to_dict() for s in specs])
        return
    rows = [("ID", "LATEST", "METHOD", "DATA", "WEIGHTS", "METRICS")]
    for s in specs:
        weights = f"{s.hub_repo_id}@{s.hub_revision or 'main'}" if s.hub_repo_id else "-"
        if s.local_dir is not None:
            weights += " (shipped)"
        rows.append(
            (
                s.id,
                "yes" if is_latest(s) else "no",
                str(s.kwargs.get("method", "-")),
                str((s.kwargs.get("data") or {}).get("name", "-")),
                weights,
                _metrics_text(s.metrics),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)) + "  " + r[-1])


@example("avb-zoo info hf-hub:ORG/NAME")
@click.command()
@click.argument("model_id")
@click.option("--json", "as_json", is_flag=True, help="Print the spec as JSON.")
def info(model_id: str, as_json: bool) -> None:
    """Show everything registered for MODEL_ID: architecture, Hub repo and revision, file hashes, metrics."""
    from avb_zoo.catalogue.reference import HubRef, parse_reference
    from avb_zoo.catalogue.registry import resolution_note, spec

    ref = parse_reference(model_id)
    if isinstance(ref, HubRef):
        _info_hub(ref, as_json)
        return
    found = spec(ref)
    if as_json:
        print_json(found.to_dict())
        return
    note = resolution_note(ref, found.id)
    if note:
        click.echo(f"note: {note}", err=True)
    data = found.to_dict()
    click.echo(f"id:          {data['id']}")
    click.echo(f"description: {data['description'] or '-'}")
    click.echo(f"entry point: {data['entry_point']}")
    hub = data["hub"]
    click.echo(f"hub:         {hub['repo_id'] + '@' + (hub['revision'] or 'main') if hub['repo_id'] else '-'}")
    click.echo(f"shipped:     {data['shipped'] or '-'}")
    click.echo(f"catalogue:   {data['recipe'] or '-'}")
    click.echo(f"metrics:     {_metrics_text(data['metrics'])}")
    for path, digest in sorted(hub["files"].items()):
        click.echo(f"file:        {path}  sha256 {digest}")
    click.echo("model:       " + json.dumps(data["kwargs"], sort_keys=True))


def _info_hub(model_id: Any, as_json: bool) -> None:
    """``info`` for a Hub repo outside the catalogue: pulled (verified), then its commit, files and config."""
    from avb_zoo.hub.resolve import fetch
    from avb_zoo.modelfile.config_file import read_config_json

    pulled = fetch(model_id, progress=False)
    config = read_config_json(pulled.folder)
    if as_json:
        print_json({**pulled.to_dict(), "config": config})
        return
    if pulled.note:
        click.echo(f"note: {pulled.note}", err=True)
    click.echo(f"id:          {pulled.id}")
    click.echo(f"hub:         {pulled.repo_id}@{pulled.revision} (commit {pulled.commit})")
    click.echo(f"from:        {pulled.detail}")
    for path, digest in sorted((pulled.files or {}).items()):
        click.echo(f"file:        {path}  sha256 {digest}")
    click.echo("model:       " + json.dumps(config, sort_keys=True))


@example("avb-zoo pull hf-hub:ORG/NAME@v1.0")
@click.command()
@click.argument("model_id")
@click.option("--revision", default=None, help="Branch, tag or commit sha (default: the catalogue's pinned one).")
@click.option("--cache-dir", type=click.Path(file_okay=False), default=None, help="HF cache (default: $HF_HOME/hub).")
@click.option("--offline", is_flag=True, help="Open no connection: use the cache or the copy shipped with avb-zoo.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def pull(model_id: str, revision: str | None, cache_dir: str | None, offline: bool, quiet: bool, as_json: bool) -> None:
    """Fetch MODEL_ID's files from the Hub (sha256-checked) and print where they are and where they came from."""
    from avb_zoo.catalogue.reference import parse_reference
    from avb_zoo.catalogue.registry import resolution_note
    from avb_zoo.hub.resolve import fetch

    ref = parse_reference(model_id)
    pulled = fetch(ref, revision=revision, cache_dir=cache_dir, offline=offline, progress=not quiet)
    note = resolution_note(ref, pulled.id)
    if note and not as_json:
        click.echo(f"note: {note}", err=True)
    if as_json:
        print_json(pulled.to_dict())
        return
    if pulled.note:
        click.echo(f"note: {pulled.note}", err=True)
    click.echo(f"{pulled.id}: {pulled.folder}")
    click.echo(f"from: {pulled.detail}")
    if pulled.commit:
        click.echo(f"commit: {pulled.commit}")


@example("avb-zoo push runs/toy-avb --repo-id ORG/NAME")
@click.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--repo-id", required=True, help="Hub repo to publish to, ORG/NAME (created if missing).")
@click.option("--private", is_flag=True, help="Create the repo as private.")
@click.option("--revision", default=None, help="Branch to commit to (default: main).")
@click.option("--commit-message", default=None, help="Commit message.")
@click.option(
    "--no-export", is_flag=True, help="Refuse a folder without ONNX graphs instead of exporting and verifying them."
)
@click.option("--torch-only", is_flag=True, help="Publish without ONNX graphs; the card then offers torch alone.")
@click.option("--json", "as_json", is_flag=True, help="Print the commit URL and the files' sha256 as JSON.")
def push(
    folder: str,
    repo_id: str,
    private: bool,
    revision: str | None,
    commit_message: str | None,
    no_export: bool,
    torch_only: bool,
    as_json: bool,
) -> None:
    """Publish the model FOLDER to the Hub as one commit with a generated model card; prints the commit URL.

    A folder without ONNX graphs (a save_pretrained folder, a run never exported: no onnx/) gets them first,
    exported and checked against PyTorch as `avb-zoo export FOLDER` does, so that the pushed model samples and
    encodes with onnxruntime as its card says; an onnx/ without its verification report is refused, naming the
    command to run. The token comes from HF_TOKEN (or `hf auth login`); HF_ENDPOINT selects
    another Hub.
    """
    import shlex
    from pathlib import Path

    from avb_zoo.errors import ExportError
    from avb_zoo.hub.hashes import sha256_file
    from avb_zoo.hub.upload import check_target, push_files, push_skipped
    from avb_zoo.modelling.publishing import has_graphs
    from avb_zoo.modelling.publishing import push as push_folder

    check_target(repo_id, revision)
    if not torch_only and not has_graphs(folder):
        command = f"avb-zoo export {shlex.quote(folder)}"
        if no_export or Path(folder, "onnx").exists():  # never write into an onnx/ this command did not vet
            raise ExportError(
                f"{folder} holds no verified ONNX graphs, so the pushed model could not sample or encode with "
                f"onnxruntime: run `{command}` first (or push with --torch-only)"
            )
        click.echo(f"{folder} holds no ONNX graphs: exporting and verifying them first ({command})", err=True)
        from avb_zoo.export import export_folder

        export_folder(folder)

    skipped = push_skipped(Path(folder))
    for rel, why in skipped.items():
        click.echo(f"skipped {rel}: {why} (push uploads only the model's own files)", err=True)
    url = push_folder(folder, repo_id, private=private, revision=revision, commit_message=commit_message)
    if as_json:
        hashes = {rel: sha256_file(p) for rel, p in push_files(Path(folder)).items()}
        out = {"commit_url": url, "repo_id": repo_id, "revision": revision or "main", "files": hashes}
        print_json({**out, "skipped": skipped})
    else:
        click.echo(url)
