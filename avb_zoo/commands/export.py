"""Exporting: ``export`` (ONNX graphs, checked against PyTorch), ``export-web``, ``serve`` and ``web-runtime``."""

from __future__ import annotations

import json

import click

from avb_zoo.commands.support import example, print_json, threads_option


@example("avb-zoo export runs/toy-avb")
@click.command("export")
@click.argument("id_or_dir")
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Folder for onnx/ (default: the model's).")
@click.option("--id", "model_id", default=None, help="Model id written into the graphs (default: the run's recipe id).")
@click.option("--opset", type=click.IntRange(min=18), default=18, show_default=True, help="ONNX opset.")
@click.option("--seed", type=int, default=None, help="Seed of the parity check's inputs (default: fresh).")
@click.option("--int8", is_flag=True, help="Also write an int8 sampler (onnx/sampler-int8.onnx), error measured.")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the verification report as JSON.")
def export_graphs(
    id_or_dir: str,
    out: str | None,
    model_id: str | None,
    opset: int,
    seed: int | None,
    int8: bool,
    threads: int | None,
    as_json: bool,
) -> None:
    """Export the model in ID_OR_DIR to ONNX and check every graph against PyTorch through onnxruntime."""
    from avb_zoo.util.threads import check_threads

    check_threads(threads)
    from avb_zoo.export import export_folder

    where, report = export_folder(id_or_dir, out, model_id=model_id, opset=opset, seed=seed, threads=threads)
    if int8:
        from avb_zoo.export.quantize import quantize_sampler

        report["int8_sampler"] = quantize_sampler(
            where, int(json.loads((where / "config.json").read_text())["latent_dim"])
        )
    if as_json:
        print_json(report)
        return
    batches = ", ".join(map(str, report["batch_sizes"]))
    for graph in report["graphs"].values():
        click.echo(
            f"{where / graph['file']}: max abs error {graph['max_abs_diff']:.2g}, max error {graph['max_error']:.2g} "
            f"(relative above 1) at batch sizes {batches}"
        )
    for name, why in report["skipped"].items():
        click.echo(f"{name}: not exported ({why})")
    click.echo(f"report: {where / 'onnx' / 'verification.json'}")
    if int8:
        q = report["int8_sampler"]
        click.echo(
            f"{where / q['file']}: int8, max abs error {q['max_abs_error']:.2g} (mean {q['mean_abs_error']:.2g}) "
            f"against float32; {q['int8_ms']:.3g} ms vs {q['float32_ms']:.3g} ms per batch of {q['batch']}"
        )


@example("avb-zoo export-web toy-avb --out toy-page")
@click.command("export-web")
@click.argument("id_or_dir")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the page (new, or a page).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def export_web(id_or_dir: str, out: str, as_json: bool) -> None:
    """Write a static browser page for the model in ID_OR_DIR: index.html, its script, the model's sampler and
    encoder graphs and config, and onnxruntime-web (prepared once by `avb-zoo web-runtime`). Any static host
    serves the folder; `avb-zoo serve` does so on 127.0.0.1."""
    from avb_zoo.web.bundle import export_web as write_page

    folder = write_page(id_or_dir, out)
    if as_json:
        print_json({"page": str(folder)})
        return
    click.echo(f"wrote the page to {folder}; serve it with `avb-zoo serve {folder}`")


@example("avb-zoo serve toy-page")
@click.command()
@click.argument("id_or_dir")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port (0: any free).")
@click.option("--isolated", is_flag=True, help="Send COOP/COEP headers so the page may run multi-threaded.")
def serve(id_or_dir: str, port: int, isolated: bool) -> None:
    """Serve the browser page of ID_OR_DIR (a folder export-web wrote, or any model: its page is written to a
    temporary folder first) on 127.0.0.1 only, until interrupted (Ctrl-C or SIGTERM)."""
    import tempfile
    from pathlib import Path

    from avb_zoo.web.bundle import MANIFEST
    from avb_zoo.web.bundle import export_web as write_page
    from avb_zoo.web.serve import HOST, make_server, stop_on_sigterm

    with stop_on_sigterm(), tempfile.TemporaryDirectory(prefix="avb-zoo-page-") as tmp:
        folder = Path(id_or_dir)
        if not (folder / MANIFEST).is_file():
            folder = write_page(id_or_dir, Path(tmp) / "page")
        server = make_server(folder, port, isolated)
        click.echo(f"serving {folder} at http://{HOST}:{server.server_address[1]}/ (Ctrl-C stops)", err=False)
        try:
            server.serve_forever()
        finally:
            server.server_close()


@example("avb-zoo web-runtime")
@click.command("web-runtime")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def web_runtime(as_json: bool) -> None:
    """Fetch onnxruntime-web at the pinned version with npm (once), check it, and keep it for export-web."""
    from avb_zoo.web.vendor import ORT_WEB_VERSION, prepare

    folder = prepare()
    if as_json:
        print_json({"onnxruntime_web": ORT_WEB_VERSION, "folder": str(folder)})
        return
    click.echo(f"onnxruntime-web {ORT_WEB_VERSION} is ready in {folder}")
