"""Running a model on onnxruntime alone: ``sample``, ``encode``, ``reconstruct`` and ``verify`` (never torch)."""

from __future__ import annotations

from typing import Any

import click

from avb_zoo.commands.support import example, print_json, threads_option

PROVIDERS = click.Choice(["auto", "cpu", "cuda"])

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
invert_option = click.option(
    "--invert", is_flag=True, help="Take 1 - x: dark ink on white paper becomes the models' white digits on black."
)


def grid_options(command: Any) -> Any:
    """--scale and --labels/--no-labels of the commands that write an image grid."""
    command = click.option(
        "--labels/--no-labels", default=True, show_default=True, help="Number the grid's rows and columns."
    )(command)
    return click.option(
        "--scale", type=click.IntRange(1, 32), default=1, show_default=True, help="Enlarge each pixel this many times."
    )(command)


@example("avb-zoo verify toy-avb")
@click.command()
@click.argument("id_or_dir")
@click.option("--provider", type=PROVIDERS, default="cpu", show_default=True, help="onnxruntime provider.")
@click.option("--json", "as_json", is_flag=True, help="Print the errors per graph as JSON.")
def verify(id_or_dir: str, provider: str, as_json: bool) -> None:
    """Run each ONNX graph's test_data_set on onnxruntime (no torch) and print the worst error.

    \b
    Example:
      avb-zoo verify toy-avb
    """
    from avb_zoo.runtime.verify import verify_model

    result = verify_model(id_or_dir, providers=provider)
    if as_json:
        print_json(result)
        return
    for graph, error in result["errors"].items():
        click.echo(f"{graph}: max error {error:.3g} (|onnxruntime - recorded| / max(1, |recorded|))")
    click.echo(f"worst: {result['worst']:.3g} ({result['graph']}), within {result['atol']:g}: passed")


@example("avb-zoo encode toy-avb digits.npy --out z.npy")
@click.command()
@click.argument("id_or_dir")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Where to write z (.npy): [N, d], or [N, K, d] with --samples K > 1.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="z draws per image.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the encoder noise.")
@click.option("--moments", "moments_out", default=None, help="Also write the mean and variance of q(z|x) (.npz).")
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
@threads_option
@invert_option
@json_option
def encode(
    id_or_dir: str,
    input_path: str,
    out: str,
    samples: int,
    seed: int,
    moments_out: str | None,
    provider: str,
    threads: int | None,
    invert: bool,
    as_json: bool,
) -> None:
    """Encode INPUT (.npy N x 784 or N x 28 x 28, floats in [0, 1] or uint8; an image or a folder of images)."""
    import io

    import numpy as np

    from avb_zoo.runtime import Encoder, load_images
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all
    from avb_zoo.util.threads import check_threads

    check_threads(threads)
    files = {}
    out_path = check_suffix(out, ".npy", "--out")
    moments_path = check_suffix(moments_out, ".npz", "--moments") if moments_out else None
    encoder = Encoder(id_or_dir, providers=provider, threads=threads)
    x = load_images(input_path, encoder.image_shape, invert=invert)
    z = encoder.encode(x, samples=samples, seed=seed)
    files[out_path] = npy_bytes(z)
    if moments_path is not None:
        mean, var = encoder.moments(x)
        buffer = io.BytesIO()
        np.savez(buffer, mean=mean, var=var)
        files[moments_path] = buffer.getvalue()
    write_all(files)
    if as_json:
        print_json(
            {
                "images": len(x),
                "out": str(out_path),
                "shape": list(z.shape),
                "moments": str(moments_path) if moments_path else None,
                "provider": encoder.providers[0],
            }
        )
        return
    click.echo(f"encoded {len(x)} image(s) to {out_path} {list(z.shape)} on {encoder.providers[0]}")


@example("avb-zoo sample toy-avb -n 16 --out samples.png")
@click.command()
@click.argument("id_or_dir")
@click.option("-n", "count", type=click.IntRange(1, 65536), default=64, show_default=True, help="Number of samples.")
@click.option("--out", default=None, help="Where to write the image grid (.png, .jpg, ...: any format Pillow writes).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of z ~ N(0, I) (and of --binarize).")
@click.option(
    "--npy",
    "npy_out",
    default=None,
    help="Also write the samples [n, x_dim] (.npy); for a posterior sampler (no input x), its draws [n, latent_dim].",
)
@click.option("--binarize", is_flag=True, help="Draw binary pixels instead of showing probabilities.")
@click.option("--columns", type=click.IntRange(min=1), default=None, help="Images per grid row.")
@grid_options
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
@threads_option
@json_option
def sample(
    id_or_dir: str,
    count: int,
    out: str | None,
    seed: int,
    npy_out: str | None,
    binarize: bool,
    columns: int | None,
    scale: int,
    labels: bool,
    provider: str,
    threads: int | None,
    as_json: bool,
) -> None:
    """Sample images from the model in ID_OR_DIR with onnxruntime and write them as a grid (--out) or an array
    (--npy). A posterior sampler (a model with no input x, such as Eight Schools) writes its draws with --npy."""
    from avb_zoo.errors import InputError
    from avb_zoo.runtime import PosteriorSampler, open_sampler
    from avb_zoo.runtime.images import check_image_path, check_scale, image_bytes, sample_grid
    from avb_zoo.runtime.limits import check_grid
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all
    from avb_zoo.util.threads import check_threads

    check_threads(threads)
    if out is None and npy_out is None:
        raise InputError("say where to write the samples: --out (an image grid) and/or --npy (an array)")
    out_path, fmt = check_image_path(out, "--out") if out else (None, None)
    check_scale(scale)
    npy_path = check_suffix(npy_out, ".npy", "--npy") if npy_out else None
    sampler = open_sampler(id_or_dir, providers=provider, threads=threads)
    if isinstance(sampler, PosteriorSampler):
        _write_posterior_draws(sampler, count, seed, out_path, npy_path, as_json)
        return
    if out_path is not None:
        check_grid(count, columns, sampler.image_shape, scale)  # before any sampling
    images = sampler.sample(count, seed=seed)
    if binarize:
        images = sampler.binarize(images, seed=seed)
    files = {}
    if out_path is not None:
        files[out_path] = image_bytes(sample_grid(images, sampler.image_shape, columns, scale, labels), fmt)
    if npy_path is not None:
        files[npy_path] = npy_bytes(images)
    write_all(files)
    if as_json:
        print_json({"samples": count, "files": [str(p) for p in files], "seed": seed, "binarized": binarize})
        return
    click.echo(f"wrote {count} sample(s) to {' and '.join(str(p) for p in files)}")


def _write_posterior_draws(
    sampler: Any, count: int, seed: int, out_path: Any | None, npy_path: Any | None, as_json: bool = False
) -> None:
    """``avb-zoo sample`` for a posterior sampler: its draws [count, latent_dim] to --npy (it makes no images)."""
    from avb_zoo.errors import InputError
    from avb_zoo.runtime.outputs import npy_bytes, write_all

    if out_path is not None or npy_path is None:
        raise InputError(
            f"{sampler.folder} is a posterior sampler (no input x): it draws parameters, not images; "
            "write them with --npy"
        )
    draws = sampler.draw(count, seed=seed)
    write_all({npy_path: npy_bytes(draws)})
    names = sampler.parameter_names
    if as_json:
        print_json({"draws": count, "shape": [count, sampler.latent_dim], "parameters": names, "npy": str(npy_path)})
        return
    order = f" ({', '.join(names)})" if names else ""
    click.echo(f"wrote {count} posterior draw(s) [{count}, {sampler.latent_dim}]{order} to {npy_path}")


@example("avb-zoo reconstruct mnist-avb-ac digits.npy --out recon.png")
@click.command()
@click.argument("id_or_dir")
@click.argument("input_path", metavar="INPUT")
@click.option("--out", required=True, help="Where to write inputs and reconstructions side by side (any image format).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the encoder noise.")
@click.option("--npy", "npy_out", default=None, help="Also write the reconstructions [N, x_dim] (.npy).")
@grid_options
@click.option("--provider", type=PROVIDERS, default="auto", show_default=True, help="onnxruntime provider.")
@threads_option
@invert_option
@json_option
def reconstruct(
    id_or_dir: str,
    input_path: str,
    out: str,
    seed: int,
    npy_out: str | None,
    scale: int,
    labels: bool,
    provider: str,
    threads: int | None,
    invert: bool,
    as_json: bool,
) -> None:
    """Encode INPUT and decode it again (pixel probabilities), with onnxruntime; pairs of input | reconstruction."""
    from avb_zoo.runtime import Encoder, Sampler, load_images
    from avb_zoo.runtime.images import check_image_path, check_scale, image_bytes, reconstruction_grid
    from avb_zoo.runtime.outputs import check_suffix, npy_bytes, write_all
    from avb_zoo.util.threads import check_threads

    check_threads(threads)
    out_path, fmt = check_image_path(out, "--out")
    check_scale(scale)
    npy_path = check_suffix(npy_out, ".npy", "--npy") if npy_out else None
    encoder = Encoder(id_or_dir, providers=provider, threads=threads)
    sampler = Sampler(encoder.folder, providers=provider, threads=threads)
    x = load_images(input_path, encoder.image_shape, invert=invert)
    recon = sampler.probabilities(encoder.encode(x, seed=seed))
    files = {out_path: image_bytes(reconstruction_grid(x, recon, encoder.image_shape, scale, labels), fmt)}
    if npy_path is not None:
        files[npy_path] = npy_bytes(recon)
    write_all(files)
    if as_json:
        print_json({"images": len(x), "files": [str(p) for p in files]})
        return
    click.echo(f"reconstructed {len(x)} image(s) into {out_path}")
