"""Ship a trained model with the package: its folder under models/, and its hashes and metrics in the catalogue.

    python tools/ship_model.py RUN_DIR MODEL_ID --metrics METRICS_JSON [--repo-id avb-zoo/NAME] [--adversary]
    python tools/ship_model.py --refresh MODEL_ID...    # card files and catalogue tables of shipped models again

Copies config.json, model.safetensors and training.json (and, with --adversary, adversary.safetensors) from
RUN_DIR into models/MODEL_ID/, exports the ONNX graphs there with their parity check, copies METRICS_JSON (what
`avb-zoo eval` wrote for this model) beside them, writes the model card (README.md) and its sample grid as
`avb-zoo push` makes them, then rewrites the [hub], [hub.files] and [metrics] tables at
the end of the catalogue file of MODEL_ID with the sha256 of every shipped file and the headline metrics. The
rest of the catalogue file, comments included, is kept as it is.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avb_zoo.catalogue.recipes import find_recipe  # noqa: E402
from avb_zoo.errors import AVBZooError  # noqa: E402

MAX_FILE_BYTES = 16 * 2**20  # every shipped file stays under 16 MiB, so the wheel stays small
# metrics.json keys shown by `avb-zoo list` (the first four digits are enough there; metrics.json has all)
HEADLINE = (
    "log_likelihood",
    "log_likelihood_mc_se",
    "log_likelihood_spread_se",
    "exact_log_likelihood",
    "reconstruction_error",
    "elbo",
    "iw_bound",
    "elbo_estimate",
)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def catalogue_tables(repo_id: str, files: dict[str, str], metrics: dict[str, float], command: str) -> str:
    """The [hub], [hub.files] and [metrics] tables, as TOML text."""
    lines = ["[hub]", f'repo_id = "{repo_id}"', 'revision = "main"', "", "[hub.files]"]
    lines += [f'"{rel}" = "{digest}"' for rel, digest in sorted(files.items())]
    lines += ["", "[metrics]", *(f"# {line}" for line in command.splitlines())]
    lines += [f"{key} = {value:.5g}" for key, value in metrics.items()]
    return "\n".join(lines) + "\n"


def strip_tables(text: str) -> str:
    """The catalogue text without its [hub], [hub.files] and [metrics] tables (they are always last)."""
    keep = []
    for line in text.splitlines():
        if line.strip() in ("[hub]", "[hub.files]", "[metrics]"):
            break
        keep.append(line)
    return "\n".join(keep).rstrip() + "\n"


def ship(run: Path, model_id: str, metrics_file: Path, repo_id: str, adversary: bool, command: str) -> Path:
    recipe = find_recipe(model_id)
    dest = ROOT / "models" / recipe.id
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    names = ["config.json", "model.safetensors"] + (["adversary.safetensors"] if adversary else [])
    names += [name for name in ("training.json",) if (run / name).is_file()]  # how it was trained, for the card
    for name in names:
        shutil.copyfile(run / name, dest / name)
    metrics = json.loads(metrics_file.read_text())
    if metrics.get("model", {}).get("id") != recipe.id:
        raise SystemExit(f"{metrics_file} measures {metrics.get('model', {}).get('id')!r}, not {recipe.id}")
    shutil.copyfile(metrics_file, dest / "metrics.json")
    from avb_zoo.export import export_model

    from avb_zoo.modelling.factory import load

    export_model(load(dest), dest, model_id=recipe.id, seed=0)
    catalogue(dest, recipe, repo_id, metrics, command)
    return dest


def catalogue(dest: Path, recipe, repo_id: str, metrics: dict, command: str) -> None:
    """Write the model card and its sample grid (as push makes them) into ``dest``, then the catalogue's
    tables with the sha256 of every file there and the headline metrics."""
    from avb_zoo.modelling.publishing import folder_card_files

    for rel, data in folder_card_files(dest, repo_id).items():
        (dest / rel).write_bytes(data)
    files = {}
    for path in sorted(p for p in dest.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        if path.stat().st_size > MAX_FILE_BYTES:
            raise SystemExit(f"{path} is {path.stat().st_size} bytes, over the {MAX_FILE_BYTES}-byte limit")
        files[path.relative_to(dest).as_posix()] = sha256(path)
    headline = {k: float(metrics[k]) for k in HEADLINE if isinstance(metrics.get(k), int | float)}
    text = strip_tables(recipe.source.read_text()) + "\n" + catalogue_tables(repo_id, files, headline, command)
    recipe.source.write_text(text)


def refresh(model_id: str) -> Path:
    """Regenerate the card files and catalogue tables of a model already shipped (weights and graphs kept)."""
    from avb_zoo.catalogue.registry import spec

    recipe, shipped = find_recipe(model_id), spec(model_id)
    if shipped.local_dir is None or shipped.hub_repo_id is None:
        raise SystemExit(f"{model_id} is not shipped with the package")
    lines = recipe.source.read_text().splitlines()
    start = lines.index("[metrics]")
    comments = []
    for line in lines[start + 1 :]:
        if not line.startswith("#"):
            break
        comments.append(line.removeprefix("#").removeprefix(" "))
    command = "\n".join(comments)
    metrics = json.loads((shipped.local_dir / "metrics.json").read_text())
    catalogue(Path(shipped.local_dir), recipe, shipped.hub_repo_id, metrics, command)
    return Path(shipped.local_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    if sys.argv[1:2] == ["--refresh"]:  # python tools/ship_model.py --refresh MODEL_ID...
        for model_id in sys.argv[2:]:
            print(f"refreshed the card and catalogue of {model_id} in {refresh(model_id)}")
        return
    parser.add_argument("run", type=Path, help="the trained run folder")
    parser.add_argument("model_id", help="the catalogue id it is shipped as, e.g. toy-vae-v1")
    parser.add_argument("--metrics", type=Path, required=True, help="metrics.json written by avb-zoo eval")
    parser.add_argument("--repo-id", default=None, help="Hub repo it is published to (default: avb-zoo/NAME)")
    parser.add_argument("--adversary", action="store_true", help="ship adversary.safetensors too")
    parser.add_argument("--command", required=True, help="the eval command that wrote --metrics (a comment)")
    args = parser.parse_args()
    try:
        name = find_recipe(args.model_id).name
        repo_id = args.repo_id or f"avb-zoo/{name}"
        dest = ship(args.run, args.model_id, args.metrics, repo_id, args.adversary, args.command)
    except AVBZooError as err:
        raise SystemExit(f"error: {err}") from None
    print(f"shipped {args.model_id} in {dest}")


if __name__ == "__main__":
    main()
