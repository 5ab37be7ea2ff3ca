"""The process group a run belongs to, as torchrun describes it: rank, world size, and what a restart means.

avb-zoo does not launch or connect processes itself: ``torchrun`` (or ``avb-zoo train --nproc N``, which
starts torchrun's elastic agent) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``, and :func:`join_world` joins that group (gloo on the CPU, NCCL on GPUs). Outside torchrun a
run is a world of one and nothing here touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch

from avb_zoo.errors import ConfigError

TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """This process's place in the run: ``rank`` of ``size`` processes (``local_rank`` on its machine)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, metrics and progress."""
        return self.rank == 0

    @property
    def local_size(self) -> int:
        """Processes of this run on this machine (torchrun's LOCAL_WORLD_SIZE; 1 outside torchrun)."""
        if self.size == 1:
            return 1
        value = os.environ.get("LOCAL_WORLD_SIZE", "")
        return int(value) if value.isdigit() and int(value) >= 1 else self.size

    @property
    def distributed(self) -> bool:
        return self.size > 1 or (torch.distributed.is_available() and torch.distributed.is_initialized())

    def shard(self, rows: int) -> slice:
        """This rank's contiguous share of ``rows`` rows; the caller has checked that ``size`` divides ``rows``."""
        per_rank = rows // self.size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    def check_divides(self, batch_size: int, what: str = "batch size") -> None:
        if batch_size % self.size:
            raise ConfigError(
                f"the global {what} {batch_size} does not split evenly across {self.size} processes; "
                f"choose a multiple of {self.size}"
            )


def launched_by_torchrun() -> bool:
    """Whether torchrun (or another launcher that sets its variables) started this process."""
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def restart_count() -> int:
    """How many times torchrun's elastic agent has restarted this group (0 on the first attempt)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def launch_id() -> str:
    """The rendezvous id of this launch (the same on every attempt of one launch), or "" outside torchrun."""
    return os.environ.get("TORCHELASTIC_RUN_ID", "") if launched_by_torchrun() else ""


def world_device(device: torch.device, world: World) -> torch.device:
    """The device of this rank: ``cuda`` becomes ``cuda:LOCAL_RANK`` under torchrun (one GPU per process)."""
    if device.type == "cuda" and world.distributed and device.index is None:
        return torch.device("cuda", world.local_rank)
    return device


def join_world(device: torch.device | str = "cpu") -> World:
    """The current group: joined here (gloo, or NCCL for CUDA) when torchrun started this process and no
    group exists yet; a world of one otherwise."""
    dist = torch.distributed
    if not dist.is_available():
        return World()
    if not dist.is_initialized():
        if not launched_by_torchrun():
            return World()
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        dist.init_process_group(backend, store=_attempt_store(rank, size), rank=rank, world_size=size)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    return World(dist.get_rank(), dist.get_world_size(), local_rank)


def _attempt_store(rank: int, size: int) -> torch.distributed.Store:
    """torchrun's store, under a prefix of its own for each restart of the group.

    By default the elastic agent shares one TCPStore across restarts, so the processes of a restarted group
    could read the addresses that the killed processes published there and fail to connect; the prefix
    keeps each attempt's keys apart.
    """
    dist = torch.distributed
    agent_hosts_it = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
    store = dist.TCPStore(
        os.environ["MASTER_ADDR"],
        int(os.environ["MASTER_PORT"]),
        size,
        is_master=rank == 0 and not agent_hosts_it,
        multi_tenant=True,
    )
    return dist.PrefixStore(f"avb-zoo/attempt-{restart_count()}/", store)


def leave_world() -> None:
    """Destroy the process group joined by :func:`join_world` (a no-op outside torchrun)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(value: Any, world: World) -> list[Any]:
    """``value`` from every rank, in rank order (torch.distributed.all_gather_object); ``[value]`` alone."""
    if not world.distributed:
        return [value]
    out: list[Any] = [None] * world.size
    torch.distributed.all_gather_object(out, value)
    return out


def mean_over_ranks(values: torch.Tensor, world: World) -> torch.Tensor:
    """The mean of ``values`` over ranks (one all_reduce): per-rank means of equal shards give the global mean."""
    if not world.distributed:
        return values
    values = values.clone()
    torch.distributed.all_reduce(values)
    return values / world.size
