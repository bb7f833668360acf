"""Where this process stands in a distributed run: its rank, the world size, whether it is the main process,
and a barrier that is safe while a rank is failing. The lowest layer: persistence and callbacks use it."""
from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist


class _RankState:
    """Whether this rank's fit is failing: then minifastai runs no collective until the next fit starts."""

    failing = False


def _error_in_flight(outer: BaseException | None) -> bool:
    """True when an exception other than `outer` (one already being handled around the fit) is propagating."""
    exc = sys.exc_info()[1]
    return exc is not None and exc is not outer


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def rank() -> int:
    """This process's global rank (0 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return _env_int("RANK", 0)


def world_size() -> int:
    """Number of processes taking part in training (1 when not distributed)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return _env_int("WORLD_SIZE", 1)


def local_rank() -> int:
    """This process's rank on its own node (selects the GPU), 0 when not distributed."""
    return _env_int("LOCAL_RANK", 0)


def is_main_process() -> bool:
    """True on rank 0 (and always outside distributed training): the process that prints and writes files."""
    return rank() == 0


def in_distributed() -> bool:
    """True when launched by `torchrun` (or a process group is up) with more than one process."""
    return world_size() > 1


def barrier() -> None:
    """Wait until every process gets here (does nothing when not distributed, or while this rank's fit is
    failing: the others are not coming)."""
    if _RankState.failing:
        return
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()
