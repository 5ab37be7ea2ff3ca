"""``avb-zoo train/eval --nproc N``: start torchrun's own elastic agent for the user, with torchrun's semantics.

The arguments become a torchrun command line (``--standalone`` on one machine; ``--rdzv-backend c10d`` and
``--rdzv-endpoint HOST:PORT`` across machines), parsed and run by ``torch.distributed.run`` itself; each
worker runs ``python -m avb_zoo.training`` (or ``avb_zoo.evaluation``). What torchrun reports as an exception (a
failed worker, a rendezvous that timed out) becomes one :class:`LaunchError` line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

from avb_zoo.errors import LaunchError, shown
from avb_zoo.util.threads import logical_cpus


@dataclass(frozen=True)
class LaunchSettings:
    """How many processes, on how many machines, restarted how often."""

    nproc: int = 1
    nnodes: int = 1
    rdzv_endpoint: str | None = None  # HOST:PORT of the rendezvous; required when nnodes > 1
    rdzv_timeout: int = 900  # seconds a rendezvous waits for every machine (torchrun's join_timeout)
    max_restarts: int = 0
    run_id: str = "avb-zoo"  # the rendezvous id across machines (one machine: a fresh id per launch)

    def validate(self) -> LaunchSettings:
        for name in ("nproc", "nnodes", "rdzv_timeout"):
            if getattr(self, name) < 1:
                raise LaunchError(f"{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.max_restarts < 0:
            raise LaunchError(f"max-restarts must be at least 0, got {self.max_restarts}")
        if self.nnodes > 1 and not self.rdzv_endpoint:
            raise LaunchError("a run on more than one machine needs --rdzv-endpoint HOST:PORT (the same on every one)")
        if self.rdzv_endpoint is not None:
            host, _, port = self.rdzv_endpoint.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise LaunchError(f"--rdzv-endpoint must be HOST:PORT, got {shown(self.rdzv_endpoint)}")
        return self

    @property
    def world_size(self) -> int:
        return self.nproc * self.nnodes

    def torchrun_args(self, module: str, args: list[str]) -> list[str]:
        """The torchrun command line (without ``torchrun`` itself) that runs ``python -m module *args``."""
        out = ["--nproc-per-node", str(self.nproc), "--max-restarts", str(self.max_restarts)]
        if self.rdzv_endpoint is None:
            out += ["--standalone"]
        else:
            out += ["--nnodes", str(self.nnodes), "--rdzv-backend", "c10d", "--rdzv-endpoint", self.rdzv_endpoint]
            out += ["--rdzv-id", self.run_id, "--rdzv-conf", f"join_timeout={self.rdzv_timeout}"]
        return out + ["--module", module, *args]


def threads_per_process(nproc: int) -> int:
    """CPU threads for each of ``nproc`` processes on this machine, so that together they fill it once."""
    return max(1, logical_cpus() // nproc)


def _first_failure(err: Any) -> str:
    """'rank R (exit code C)' of the first failed worker of a ChildFailedError."""
    try:
        rank, failure = err.get_first_failure()
        return f"rank {rank} (exit code {failure.exitcode})"
    except Exception:  # a torchrun version whose error lacks these fields
        return "a worker"


def launch(module: str, args: list[str], settings: LaunchSettings, what: str = "training") -> None:
    """Run ``python -m module *args`` on ``settings.nproc`` processes (per machine) under torchrun's agent."""
    settings.validate()
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.elastic.rendezvous.api import RendezvousError, RendezvousTimeoutError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", str(threads_per_process(settings.nproc)))
    parsed = parse_args(settings.torchrun_args(module, args))
    logging.getLogger("torch.distributed.elastic").setLevel(logging.ERROR)  # the agent's chatter is not the user's
    try:
        run(parsed)  # torchrun itself (--standalone picks a free port and a fresh rendezvous id)
    except ChildFailedError as err:
        raise LaunchError(
            f"{what} failed on {_first_failure(err)} after {settings.max_restarts} restart(s) allowed; "
            "its own message is above"
        ) from None
    except RendezvousTimeoutError:
        raise LaunchError(
            f"the rendezvous at {settings.rdzv_endpoint or 'this machine'} timed out after {settings.rdzv_timeout} s: "
            f"not all {settings.nnodes} machines joined (start `--nnodes {settings.nnodes}` on each of them)"
        ) from None
    except RendezvousError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LaunchError(f"the rendezvous at {settings.rdzv_endpoint or 'this machine'} failed: {first}") from None
