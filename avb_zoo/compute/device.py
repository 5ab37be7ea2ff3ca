"""Device names from users, checked up front with a clear message."""

from __future__ import annotations

import torch

from avb_zoo.errors import ConfigError, shown


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)`` after checking it exists here (``cuda`` without a GPU is an error, not a crash)."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown device {shown(name)} (use cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {shown(name)} was asked for but CUDA is not available on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {shown(name)} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device
