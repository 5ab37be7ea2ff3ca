"""Record a fixed-seed output of every model the package ships, for tests/test_shipped_models.py.

    python tools/record_shipped_outputs.py      # -> tests/data/shipped_outputs.json

Image models: pixel probabilities of `Sampler.sample(4, seed=0)` at every 13th pixel. Posterior samplers:
`PosteriorSampler.draw(8, seed=0)`. Computed with onnxruntime from the shipped folder; rerun after shipping
a model (the test then checks that the package, on any machine, still gives these numbers).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avb_zoo.catalogue.registry import all_specs  # noqa: E402
from avb_zoo.runtime import PosteriorSampler, open_sampler  # noqa: E402

OUT = ROOT / "tests" / "data" / "shipped_outputs.json"
PIXEL_STRIDE = 13


def recorded_output(folder: Path) -> dict:
    """What the test compares: the kind of output and its values as nested lists of floats."""
    sampler = open_sampler(folder)
    if isinstance(sampler, PosteriorSampler):
        return {"kind": "posterior draws, PosteriorSampler.draw(8, seed=0)", "values": sampler.draw(8, 0).tolist()}
    probs = sampler.sample(4, seed=0)[:, ::PIXEL_STRIDE]
    return {"kind": f"Sampler.sample(4, seed=0)[:, ::{PIXEL_STRIDE}]", "values": probs.tolist()}


def main() -> None:
    record = {s.id: recorded_output(s.local_dir) for s in all_specs() if s.local_dir is not None}
    OUT.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded {', '.join(record)} in {OUT}")


if __name__ == "__main__":
    main()
