"""The matrix products a piece of code calls, recorded once and replayed alone: the arithmetic floor of that code.

``record(fn)`` runs ``fn`` under a dispatch mode that keeps every mm, addmm, bmm, baddbmm and convolution
call with its tensors' shapes, strides and dtypes; ``materialise`` makes random tensors of exactly those
layouts; ``replay`` calls the same ops back to back. The replay's time is what those products cost on this
machine with nothing else around them (no activations, no autograd bookkeeping, no Python between them).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode

PRODUCTS = {"mm", "addmm", "bmm", "baddbmm", "convolution", "convolution_backward"}


class ProductRecorder(TorchDispatchMode):
    """Records every matrix product (op, its tensor arguments' shapes/strides, its other arguments)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Callable, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.overloadpacket.__name__ in PRODUCTS:
            spec = tuple(
                ("tensor", a.shape, a.stride(), a.dtype) if isinstance(a, torch.Tensor) else ("value", a) for a in args
            )
            self.calls.append((func, spec, dict(kwargs)))
        return func(*args, **kwargs)


def flops_of(calls: list[tuple[Callable, tuple, dict]]) -> float:
    """FLOPs of the recorded products (torch's own flop formulas)."""
    from torch.utils.flop_counter import FlopCounterMode

    args = materialise(calls)
    with FlopCounterMode(display=False) as counter:
        replay(args)
    return float(counter.get_total_flops())


def materialise(calls: list[tuple[Callable, tuple, dict]]) -> list[tuple[Callable, list, dict]]:
    """Random tensors with each recorded call's shapes and strides (a transposed view stays transposed)."""
    out = []
    for func, spec, kwargs in calls:
        args = []
        for item in spec:
            if item[0] == "tensor":
                _, shape, stride, dtype = item
                args.append(torch.empty_strided(shape, stride, dtype=dtype).normal_())
            else:
                args.append(item[1])
        out.append((func, args, kwargs))
    return out


def replay(calls: list[tuple[Callable, list, dict]]) -> None:
    for func, args, kwargs in calls:
        func(*args, **kwargs)


def record(fn: Callable[[], object]) -> list[tuple[Callable, tuple, dict]]:
    """The products ``fn()`` calls, in order."""
    recorder = ProductRecorder()
    with recorder:
        fn()
    return recorder.calls
