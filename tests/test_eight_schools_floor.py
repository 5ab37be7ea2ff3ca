"""The NUTS floor of the Eight Schools comparison: every split of the chains' halves, not one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "eight_schools" / "compare.py"


def load_compare():
    spec = importlib.util.spec_from_file_location("eight_schools_compare", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_floor_covers_the_35_splits_and_shows_a_chain_that_differs() -> None:
    compare = load_compare()
    rng = np.random.default_rng(0)
    draws = rng.standard_normal(4 * 2500)
    floors = compare.split_floors(draws)
    assert len(floors["wasserstein1"]) == 35  # C(8, 4) / 2
    one_split = compare.marginal_distances(draws[:5000], draws[5000:])["wasserstein1"]  # chains 1-2 against 3-4
    assert min(floors["wasserstein1"]) <= one_split <= max(floors["wasserstein1"])
    # a chain offset by 0.5: the splits that separate its halves from the rest see it, the others less
    shifted = draws.copy()
    shifted[:2500] += 0.5
    stuck = compare.split_floors(shifted)["wasserstein1"]
    assert max(stuck) > 0.2 > max(floors["wasserstein1"])
