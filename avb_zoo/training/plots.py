"""Loss curves of a run (``avb-zoo plot RUN``) drawn with matplotlib's Agg canvas: no display, no pyplot
state, any format matplotlib saves (by extension)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from avb_zoo.errors import MissingDependency, OutputError

PANELS = (
    ("primal", "primal loss (encoder + decoder)"),
    ("adversary", "adversary loss"),
    ("elbo", "ELBO"),
    ("rec", "reconstruction error"),
)


def _figure_class() -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingDependency("avb-zoo plot needs matplotlib: pip install matplotlib") from None
    return Figure


def plot_formats() -> dict[str, str]:
    """{extension: description} of what matplotlib's Agg canvas writes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return {f".{ext}": name for ext, name in FigureCanvasAgg.get_supported_filetypes().items()}


def check_plot_path(path: str | Path) -> Path:
    """``path`` if matplotlib writes its extension; refused before any work is done."""
    _figure_class()
    path = Path(path)
    formats = plot_formats()
    if path.suffix.lower() not in formats:
        found = f"'{path.suffix}'" if path.suffix else "no extension"
        raise OutputError(f"--out {path}: {found} is not a format matplotlib writes; use one of {', '.join(formats)}")
    if path.is_dir():
        raise OutputError(f"--out {path} is a folder")
    return path


def loss_curves(rows: Sequence[dict[str, Any]], title: str, method: str | None, fmt: str = "png") -> bytes:
    """One panel per loss over the steps of ``rows`` (history.jsonl rows), encoded as ``fmt``. An AVB run's
    ELBO is the adversary's estimate, and its panel says so."""
    figure = _figure_class()(figsize=(9, 6), layout="constrained")
    axes = figure.subplots(2, 2, sharex=True)
    steps = [row["step"] for row in rows]
    for ax, (key, label) in zip(axes.flat, PANELS, strict=True):
        if key == "elbo" and method != "vae":
            label = "ELBO estimate (the adversary's KL; not a bound)"
        values = [row.get(key) for row in rows]
        ax.plot(steps, [float("nan") if v is None else v for v in values], lw=1.2)
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("step")
    figure.suptitle(title)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, dpi=120)
    return buffer.getvalue()
