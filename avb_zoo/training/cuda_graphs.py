"""CUDA-graph capture of an in-place step program, behind one guard.

A step of the zoo's MNIST recipes is a few hundred small kernels; replaying them as one captured graph
removes the host's launch cost. The program must be free of host synchronisation and keep every tensor it
touches at a fixed address (:class:`avb_zoo.training.fast_step.FastStep` is written that way), and the
inputs it reads must be refreshed in place between replays.

:func:`graph_blocker` says why graphs cannot be used here (or None); :func:`capture` records the program
once the caller has run it a few times (real steps, on a side stream). Everything before the capture call
runs on a CPU too and is tested there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch


def graph_blocker(device: torch.device, noise: str, distributed: bool) -> str | None:
    """Why the step cannot be captured as a CUDA graph on ``device``; None when it can."""
    if device.type != "cuda":
        return f"CUDA graphs need a CUDA device (this run is on {device.type})"
    if noise != "device":
        return "CUDA graphs need the device noise stream (host-drawn inputs cannot be replayed)"
    if distributed:
        return "CUDA graphs are not used under torchrun (each step all-reduces gradients through DDP)"
    if not torch.cuda.is_available():
        return "CUDA graphs need a CUDA device (torch sees none)"
    return None


@contextmanager
def warmup_stream(device: torch.device) -> Iterator[None]:
    """Run the enclosed work on a side stream (CUDA's rule for the runs before a capture); a no-op on a CPU."""
    if device.type != "cuda":
        yield
        return
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        yield
    torch.cuda.current_stream(device).wait_stream(side)


class CapturedStep:
    """A captured program: ``replay()`` runs one more step with the same kernels on the current stream."""

    def __init__(self, graph: torch.cuda.CUDAGraph) -> None:
        self.graph = graph

    def replay(self) -> None:
        self.graph.replay()


def capture(program: Callable[[], None]) -> CapturedStep:
    """Capture ``program`` (already run, so compiled and with its memory allocated) as a CUDA graph.

    The warm-up runs that must precede a capture are the engine's first real steps (it runs them on a side
    stream). Raises RuntimeError (from torch) when the program does something a graph cannot hold.
    """
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        program()
    torch.cuda.synchronize()
    return CapturedStep(graph)
