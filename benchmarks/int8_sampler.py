"""int8 sampler against float32: error in the pixel probabilities and time per batch, on onnxruntime (CPU).

    PYTHONPATH=. python benchmarks/int8_sampler.py [ID_OR_DIR ...]

Without arguments: the shipped toy-avb and the mnist-avb-ac architecture (freshly initialised, so its error
is that of untrained weights; pass a trained folder for the real figure). Each model's sampler is quantised
with onnxruntime's dynamic quantisation (export/quantize.py) into a temporary copy; nothing is written beside
the models. Prints one Markdown table row per model and batch size.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from avb_zoo.export.quantize import compare, quantize_sampler


def _mnist_folder(tmp: Path) -> Path:
    import torch
    from avb_zoo.export import export_model

    from avb_zoo.catalogue.recipes import find_recipe
    from avb_zoo.modelling.model import AVBModel
    from avb_zoo.modelling.weights import save

    torch.manual_seed(0)
    recipe = find_recipe("mnist-avb-ac")
    model = AVBModel({**recipe.model, "id": recipe.id})
    folder = save(model, tmp / "mnist-avb-ac-init")
    export_model(model, folder, model_id=recipe.id, seed=0)
    return folder


def main(argv: list[str]) -> None:
    from avb_zoo.runtime.locate import read_model_config, resolve_model_dir

    with tempfile.TemporaryDirectory(prefix="avb-zoo-int8-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sources = [(name, resolve_model_dir(name)) for name in argv] or [
            ("toy-avb (trained)", resolve_model_dir("toy-avb")),
            ("mnist-avb-ac (untrained init)", _mnist_folder(tmp)),
        ]
        print(
            "| model | batch | float32 ms | int8 ms | speed-up | max abs error | mean abs error | file KiB f32 / int8 |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for name, folder in sources:
            copy = tmp / f"copy-{len(list(tmp.iterdir()))}"
            shutil.copytree(folder, copy, symlinks=False)
            latent = int(read_model_config(copy)["latent_dim"])
            report = quantize_sampler(copy, latent)
            sizes = f"{report['float32_bytes'] / 1024:.0f} / {report['bytes'] / 1024:.0f}"
            for batch in (1, 64, 1024):
                r = compare(str(copy / "onnx/sampler.onnx"), str(copy / report["file"]), latent, batch=batch)
                speed = r["float32_ms"] / r["int8_ms"]
                print(
                    f"| {name} | {batch} | {r['float32_ms']:.3f} | {r['int8_ms']:.3f} | {speed:.2f}x | "
                    f"{r['max_abs_error']:.3g} | {r['mean_abs_error']:.3g} | {sizes} |"
                )


if __name__ == "__main__":
    main(sys.argv[1:])
