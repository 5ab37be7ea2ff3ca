"""Mixed precision for training: bf16 matrix products where the processor computes them natively.

``--precision bf16`` runs the matrix products and convolutions of the forward pass under torch.autocast in
bfloat16 (inputs and weights rounded to bf16, products accumulated in float32). Everything else stays in the
model's dtype: the networks' outputs are cast back before any loss (decoder logits, the adversary's logits,
encoder samples and moments), so log-densities, losses, gradients' accumulation into the float32 master
weights and Adam all run in float32. A CPU without native bf16 instructions would emulate them, slower than
float32, so bf16 is refused there rather than silently made slow.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import torch

from avb_zoo.catalogue.recipes import PRECISIONS
from avb_zoo.errors import ConfigError, shown

__all__ = ["PRECISIONS", "autocast", "check_precision", "cpu_has_bf16", "resolve_precision"]

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "avx_ne_convert")  # x86 flags of native bf16 arithmetic
CPU_FLAGS_ENV = "AVB_ZOO_CPU_FLAGS"  # replaces the flags read from /proc/cpuinfo (to test or to opt out)


def cpu_flags() -> set[str]:
    """The processor's feature flags (Linux /proc/cpuinfo ``flags``/``Features``), or ``$AVB_ZOO_CPU_FLAGS``."""
    override = os.environ.get(CPU_FLAGS_ENV)
    if override is not None:
        return set(override.replace(",", " ").split())
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bf16 arithmetic (x86: AVX512-BF16, AMX-BF16 or AVX-NE-CONVERT; Arm: BF16)."""
    flags = cpu_flags()
    if any(flag in flags for flag in BF16_CPU_FLAGS):
        return True
    return platform.machine().lower() in ("aarch64", "arm64") and "bf16" in flags


def check_precision(precision: str, device: torch.device | str = "cpu", dtype: str = "float32") -> str:
    """``precision`` when it can run on ``device`` with a model in ``dtype``; else ConfigError in one line."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {shown(precision)}; choose one of {list(PRECISIONS)}")
    if precision == "float32":
        return precision
    if dtype != "float32":
        raise ConfigError(f"--precision bf16 trains a float32 model; it cannot be combined with --dtype {dtype}")
    device = torch.device(device)
    if device.type == "cpu" and not cpu_has_bf16():
        raise ConfigError(
            "--precision bf16 needs a CPU with native bf16 instructions (AVX512-BF16, AMX or AVX-NE-CONVERT on x86, "
            "BF16 on Arm); this one has none, so bf16 would be emulated and slower: use --precision float32"
        )
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"--precision bf16: the GPU {shown(str(device))} does not support bf16")
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--precision bf16 runs on cpu or cuda, not {shown(device.type)}")
    return precision


def resolve_precision(
    asked: str | None,
    preferred: str,
    device: torch.device | str = "cpu",
    dtype: str = "float32",
    saved: str | None = None,
) -> tuple[str, str | None]:
    """(the precision a run trains in, a note when a preference could not be followed).

    ``asked`` (``--precision``) is checked and refused when it cannot run; without it a resumed run keeps its
    checkpoint's (``saved``), and a new run takes the recipe's ``preferred`` one, or float32 with a note where
    that cannot run here (the user did not ask for bf16, so its absence is not an error).
    """
    if asked is not None:
        return check_precision(asked, device, dtype), None
    if saved is not None:
        return check_precision(saved, device, dtype), None
    try:
        return check_precision(preferred, device, dtype), None
    except ConfigError as err:
        return "float32", f"the recipe trains in {preferred} where it can; here float32 ({err})"


@contextlib.contextmanager
def autocast(device: torch.device | str, precision: str) -> Iterator[None]:
    """The forward pass's precision: bf16 matrix products under ``bf16``, nothing changed under ``float32``."""
    enabled = precision == "bf16"
    with torch.autocast(torch.device(device).type, dtype=torch.bfloat16, enabled=enabled):
        yield
