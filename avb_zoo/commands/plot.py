"""``avb-zoo plot RUN``: the loss curves of a training run, from the history its folder keeps."""

from __future__ import annotations

import click

from avb_zoo.commands.support import example, print_json


@example("avb-zoo plot runs/toy-avb --out losses.png")
@click.command()
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--out", default=None, help="Image to write (.png, .pdf, .svg, ...; default: RUN/losses.png).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def plot(run: str, out: str | None, as_json: bool) -> None:
    """Plot the losses of the training run in RUN (its history.jsonl) as an image.

    Example: avb-zoo plot runs/toy-avb --out losses.png
    """
    import json
    from pathlib import Path

    from avb_zoo.errors import CheckpointError
    from avb_zoo.training.history import read_history
    from avb_zoo.training.plots import check_plot_path, loss_curves
    from avb_zoo.util.fileio import atomic_write_bytes

    folder = Path(run)
    path = check_plot_path(out or folder / "losses.png")
    rows = read_history(folder)
    if not rows:
        raise CheckpointError(f"{folder / 'history.jsonl'} holds no reports yet (one comes every --log-every steps)")
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        config = {}
    method = config.get("method") if isinstance(config, dict) else None
    title = f"{config.get('id', folder.name) if isinstance(config, dict) else folder.name}: steps 1-{rows[-1]['step']}"
    atomic_write_bytes(path, loss_curves(rows, title, method, path.suffix.lower().lstrip(".")))
    if as_json:
        print_json({"reports": len(rows), "last_step": rows[-1]["step"], "out": str(path)})
        return
    click.echo(f"plotted {len(rows)} reports (to step {rows[-1]['step']}) into {path}")
