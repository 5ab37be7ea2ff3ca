"""Training engines: one step function, three ways to run it.

* ``eager``: the reference. With the host noise stream it is :func:`avb_zoo.training.step.train_step`
  (the only engine that runs under torchrun); with the device stream it is the fast step's program run
  op by op.
* ``compiled``: the fast step's program through torch.compile (Inductor fuses forward, backward and both
  Adam updates into generated kernels).
* ``graphs``: the compiled program captured once as a CUDA graph and replayed every step, with the
  images resident on the device and every draw made inside the graph (device noise stream).

Engines compute the same function of (seed, step) given the noise stream; the stream is a property of the
run (recorded in its checkpoint): ``host`` draws with the project's keyed CPU generators, ``device`` with
the keyed Philox generator on the device. When an engine cannot run it falls back (graphs -> compiled ->
eager) and says why in ``notes``; the noise stream never changes under a run.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from avb_zoo.catalogue.recipes import TrainSettings
from avb_zoo.compute.distributed import World
from avb_zoo.errors import ConfigError, TrainingDiverged, shown
from avb_zoo.modelling.model import AVBModel
from avb_zoo.training.batches import BatchSource
from avb_zoo.training.cuda_graphs import CapturedStep, capture, graph_blocker, warmup_stream
from avb_zoo.training.fast_step import NOISE_STREAMS, DeviceInputs, FastStep, HostInputs
from avb_zoo.training.players import Players
from avb_zoo.training.step import StepResult, train_step

ENGINES = ("eager", "compiled", "graphs")
GRAPH_WARMUP_STEPS = 3


def default_noise(engine: str) -> str:
    """The noise stream a new run gets: ``device`` for graphs (they need it), else ``host``."""
    return "device" if engine == "graphs" else "host"


def check_engine(engine: str, noise: str, world: World) -> None:
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {shown(engine)}; choose one of {list(ENGINES)}")
    if noise not in NOISE_STREAMS:
        raise ConfigError(f"unknown noise stream {shown(noise)}; choose one of {list(NOISE_STREAMS)}")
    if world.distributed and (engine != "eager" or noise != "host"):
        raise ConfigError(
            f"engine {shown(engine)} with {shown(noise)} noise runs in one process; under torchrun use --engine eager "
            "(host noise)"
        )


@dataclass
class Engine:
    """Runs steps; ``result()`` reads the last step's losses (a device synchronisation for the fast engines)."""

    name: str
    noise: str
    notes: list[str] = field(default_factory=list)
    synchronous: bool = True  # whether every step's result is already on the host

    def run(self, step: int) -> None:
        raise NotImplementedError

    def result(self) -> StepResult:
        raise NotImplementedError


class ReferenceEngine(Engine):
    """:func:`train_step` on host-drawn inputs (DDP-capable)."""

    def __init__(
        self, model, optimizers, settings, source, seed, players: Players, world: World, precision: str = "float32"
    ) -> None:
        super().__init__("eager", "host")
        self.args = (model, optimizers, settings, source, seed, players, world)
        self.precision = precision
        self._last: StepResult | None = None

    def run(self, step: int) -> None:
        model, optimizers, settings, source, seed, players, world = self.args
        rows = world.shard(settings.batch_size)
        x = source.batch(seed, step, settings.batch_size)[rows].to(model.device, model.dtype)
        self._last = train_step(model, optimizers, x, seed, step, settings, players, world, self.precision)
        if not self._last.finite():
            raise TrainingDiverged(
                f"the loss became non-finite at step {step} (primal {self._last.primal}, adversary "
                f"{self._last.adversary})",
            )

    def result(self) -> StepResult:
        assert self._last is not None
        return self._last


class FastEngine(Engine):
    """The fast step's program: eager, compiled, or compiled and captured as a CUDA graph."""

    def __init__(
        self,
        requested: str,
        noise: str,
        model: AVBModel,
        optimizers: dict[str, torch.optim.Optimizer],
        settings: TrainSettings,
        source: BatchSource,
        seed: int,
        start_step: int,
        precision: str = "float32",
    ) -> None:
        super().__init__(requested, noise, synchronous=False)
        device_inputs = DeviceInputs(model, source, settings, seed) if noise == "device" else None
        self.host_inputs = HostInputs(model, source, settings, seed) if noise == "host" else None
        self.device = model.device
        self.step = FastStep(model, optimizers, settings, start_step, device_inputs, precision)
        self.program: Callable = self.step.program
        self.captured: CapturedStep | None = None
        self.warmups = 0
        if requested == "graphs":
            blocker = graph_blocker(model.device, noise, distributed=False)
            if blocker is not None:
                self._fall_back("compiled", blocker)
        if self.name in ("compiled", "graphs"):
            self.program = torch.compile(self.step.program, dynamic=False)

    def _fall_back(self, to: str, why: str) -> None:
        self.notes.append(f"engine {self.name} -> {to}: {why}")
        warnings.warn(f"avb-zoo: engine {self.name} falls back to {to}: {why}", stacklevel=3)
        self.name = to
        if to == "eager":
            self.program = self.step.program

    def _call(self, step: int) -> None:
        inputs = self.host_inputs(step) if self.host_inputs is not None else None
        if inputs is None and self.step.inputs is not None:
            self.step.inputs.prepare(step)
        try:
            self.program(inputs)
        except Exception as err:  # noqa: BLE001 - any compiler failure falls back to the eager program
            if self.name == "eager":
                raise
            self._fall_back("eager", f"torch.compile failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            self.program(inputs)

    def run(self, step: int) -> None:
        if self.name != "graphs":
            self._call(step)
            return
        if self.captured is not None:
            self.step.inputs.prepare(step)
            self.captured.replay()
            return
        if self.warmups < GRAPH_WARMUP_STEPS:  # real steps, run on a side stream before the capture
            with warmup_stream(self.device):
                self._call(step)
            self.warmups += 1
            return
        self.step.inputs.prepare(step)
        try:
            self.captured = capture(lambda: self.program(None))
        except Exception as err:  # noqa: BLE001 - any capture failure falls back to the compiled program
            self._fall_back("compiled", f"capture failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            self._call(step)
            return
        self.captured.replay()

    def result(self) -> StepResult:
        first_bad = int(self.step.first_bad)
        primal, adversary, elbo, rec = self.step.report.tolist()
        if first_bad >= 0:
            raise TrainingDiverged(f"the loss became non-finite at step {first_bad} (nothing was updated from then on)")
        return StepResult(primal=primal, adversary=adversary, elbo=elbo, rec=rec)


def make_engine(
    engine: str,
    noise: str,
    model: AVBModel,
    optimizers: dict[str, torch.optim.Optimizer],
    settings: TrainSettings,
    source: BatchSource,
    seed: int,
    start_step: int,
    players: Players,
    world: World,
    precision: str = "float32",
) -> Engine:
    """The engine that will run this training (after the checks of :func:`check_engine`)."""
    check_engine(engine, noise, world)
    if engine == "eager" and noise == "host":
        return ReferenceEngine(model, optimizers, settings, source, seed, players, world, precision)
    return FastEngine(engine, noise, model, optimizers, settings, source, seed, start_step, precision)
