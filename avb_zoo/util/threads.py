"""How many threads a command computes with, chosen so that a busy core never stalls every op (torch-free).

Each intra-op parallel op waits at a barrier for all its threads; when another program holds a core, the
thread scheduled there runs late and every op waits for it (toy-avb trains 4.6x slower on two threads than on
one on a two-core machine beside two busy processes: benchmarks/threads_load.py). The automatic choice
therefore uses only the physical cores that other programs leave idle, measured from the kernel's CPU
counters (``/proc/stat``) minus this process's own CPU time, and one thread when a step's matrix products
are too small to split. ``--threads N`` or the usual environment variables (``OMP_NUM_THREADS``,
``MKL_NUM_THREADS``) fix the count instead; a fixed count also makes a run bitwise repeatable, which the
automatic choice does not promise when the load changes mid-run (a different split of a convolution or a
reduction changes the last bits).

The onnxruntime commands (sample, encode, reconstruct) use this module as it is (see
:mod:`avb_zoo.runtime.session`); :mod:`avb_zoo.compute.threads` applies a choice to torch and keeps it right
during long loops.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from avb_zoo.errors import ConfigError, shown

THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
SMALL_OP_FLOPS = 1e6  # mean FLOPs per matrix product below which one thread beats a split (fork/join costs more)
MEASURE_SECONDS = 0.2  # the window over which the idle cores are measured at start
RECHECK_SECONDS = 5.0  # how often a running loop looks again (a build or a browser may start mid-run)
SPARE_CORE = 0.3  # a core counts as free when others use at most 0.7 of it


def logical_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a container or ``taskset`` narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical cores among this process's CPUs (hyper-threads share a core's arithmetic units)."""
    cpus = logical_cpus()
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return cpus
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    cores: set[tuple[str, str]] = set()
    for block in text.split("\n\n"):
        fields = dict((k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in block.splitlines()))
        if "processor" not in fields or (allowed is not None and int(fields["processor"]) not in allowed):
            continue
        if "core id" not in fields:
            return cpus
        cores.add((fields.get("physical id", "0"), fields["core id"]))
    return max(1, min(cpus, len(cores))) if cores else cpus


def check_threads(threads: int | None) -> int | None:
    """``--threads``: None (automatic) or a whole number from 1 to this machine's logical CPUs."""
    if threads is None:
        return None
    cpus = logical_cpus()
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= cpus:
        raise ConfigError(
            f"--threads must be a whole number from 1 to {cpus} (the CPUs this process may use), got {shown(threads)}"
        )
    return threads


def env_threads() -> tuple[str, int] | None:
    """(variable, count) of the first thread variable set to a positive whole number, else None."""
    for name in THREAD_ENV:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return name, int(value)
    return None


def _cpu_counters() -> tuple[float, float] | None:
    """(busy, total) jiffies of all CPUs since boot, or None where /proc/stat is not readable."""
    try:
        first = Path("/proc/stat").read_text().splitlines()[0].split()
    except (OSError, IndexError):
        return None
    values = [float(v) for v in first[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0.0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


class OtherLoad:
    """Cores kept busy by other programs since the last reading (this process's own CPU time taken out)."""

    def __init__(self) -> None:
        self.ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    @property
    def since(self) -> float | None:
        """When the current measurement began (``time.monotonic``), None without /proc/stat."""
        return None if self._last is None else self._last[2]

    def _read(self) -> tuple[float, float, float] | None:
        counters = _cpu_counters()
        if counters is None:
            return None
        return counters[0] / self.ticks, time.process_time(), time.monotonic()

    def busy_cores(self) -> float | None:
        """Busy cores of other programs, averaged since the previous call (None without /proc/stat)."""
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[2] - last[2] <= 0:
            return None
        others = (now[0] - last[0]) - (now[1] - last[1])
        return max(0.0, others / (now[2] - last[2]))


def other_busy_cores(seconds: float = MEASURE_SECONDS, load: OtherLoad | None = None) -> float:
    """Cores other programs keep busy, measured over ``seconds`` (the load average where /proc/stat is missing).

    ``load``, an OtherLoad made earlier, counts the time since it began (or since its last reading) towards the
    window, so work done meanwhile (imports, opening a graph) shortens the wait."""
    load = OtherLoad() if load is None else load
    if load.since is None:  # no counters (not Linux): the load average stands in
        return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    time.sleep(max(0.0, seconds - (time.monotonic() - load.since)))
    return load.busy_cores() or 0.0


def idle_cores(busy: float, cores: int) -> int:
    """Whole cores left when other programs keep ``busy`` cores busy (at least 1)."""
    return max(1, min(cores, int(cores - busy + SPARE_CORE)))


@dataclass(frozen=True)
class ThreadChoice:
    """The thread count a command runs with and why (recorded in training.json and metrics.json)."""

    threads: int
    source: str  # "--threads", an environment variable's name, or "auto"
    reason: str = ""
    follows_load: bool = False  # taken from the idle cores, so a long loop should look again (ThreadGovernor)

    @property
    def automatic(self) -> bool:
        return self.source == "auto"

    def describe(self) -> str:
        return f"{self.threads} ({self.source}{': ' + self.reason if self.reason else ''})"


def choose_threads(
    requested: int | None = None,
    mean_op_flops: float | None = None,
    processes: int = 1,
    load: OtherLoad | None = None,
) -> ThreadChoice:
    """The count to use: ``requested`` (``--threads``), else a thread variable, else automatic.

    Automatic: one thread when the step's matrix products average under ``SMALL_OP_FLOPS``, else the
    physical cores other programs leave idle, shared among ``processes`` of this machine (torchrun's ranks),
    measured over ``MEASURE_SECONDS`` (since ``load`` began when one is given: see :func:`other_busy_cores`).
    """
    if requested is not None:
        return ThreadChoice(check_threads(requested) or 1, "--threads")
    env = env_threads()
    if env is not None:
        return ThreadChoice(min(env[1], logical_cpus()), env[0])
    if mean_op_flops is not None and mean_op_flops < SMALL_OP_FLOPS:
        return ThreadChoice(1, "auto", "products too small to split")
    busy, cores = other_busy_cores(load=load), physical_cores()
    share = max(1, idle_cores(busy, cores) // max(1, processes))
    why = f"other programs kept {busy:.1f} of {cores} physical cores busy"
    why += f"; {processes} processes share the rest" if processes > 1 else ""
    return ThreadChoice(share, "auto", why, follows_load=True)
