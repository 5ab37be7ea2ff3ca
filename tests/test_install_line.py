"""The set-up line is true on any machine: torch's CPU build from PyTorch's CPU wheel index where a CPU is all
there is, the default build on a GPU machine, both stated; the package asks for a range of torch, never a pin;
CI installs torch the same way."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_quick_start_installs_the_cpu_build_from_the_cpu_index_and_names_the_gpu_build() -> None:
    readme = (ROOT / "README.md").read_text()
    quick = readme[readme.index("## Quick start") : readme.index("## Run the tests")]
    assert f".venv/bin/pip install torch --index-url {CPU_INDEX}" in quick
    assert "torch==" not in quick  # a pin from PyPI is the CUDA build on Linux
    assert "GPU" in quick and "`.venv/bin/pip install torch`" in quick  # the default build, for a GPU machine


def test_the_package_asks_for_a_range_of_torch() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (torch,) = [d for d in deps if re.match(r"torch\b", d)]
    assert ">=" in torch and "<" in torch.replace("<=", "") and "==" not in torch


def test_ci_installs_the_cpu_build_the_same_way() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert CPU_INDEX in ci and "torch==" not in ci
