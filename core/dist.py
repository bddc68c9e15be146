"""Distributed helpers shared by training and eval: who am I, clean teardown, /dev/shm.

Rank and world size are read from the launcher's environment before any process group
exists (deepspeed and torchrun set RANK/WORLD_SIZE; under mpirun Open MPI or MPICH set
their own names), so config errors can be printed once, by rank 0, before init.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist

_RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")


def _first_int(names: tuple[str, ...], default: int) -> int:
    return next((int(os.environ[n]) for n in names if n in os.environ), default)


def launched_rank() -> int:
    """This process's global rank as the launcher set it (0 when launched alone)."""
    return _first_int(_RANK_VARS, 0)


def launched_world_size() -> int:
    """The number of ranks, known before init (1 when launched alone)."""
    return _first_int(_WORLD_VARS, 1)


def init_process_group() -> tuple[int, int]:
    """(rank, world): joins the launcher's process group when there is more than one rank
    (nccl on GPU, gloo on CPU); (0, 1) alone."""
    world = launched_world_size()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def finish(status: int = 0) -> None:
    """Leave cleanly with `status`: torch 2.13's gloo can abort at interpreter exit, so
    flush, tear the process group down and exit at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    if dist.is_initialized():
        rank = dist.get_rank()
        dist.barrier()
        dist.destroy_process_group()
        remove_shm_buffers(rank)
    os._exit(status)


def remove_shm_buffers(rank: int) -> None:
    """DeepSpeed's CPU all-reduce leaves a ~66 MB buffer per rank in /dev/shm, named by
    master address and port; remove this rank's once every rank is done with it."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if torch.cuda.is_available() or not addr or not port:
        return
    for path in Path("/dev/shm").glob(f"deepspeed_*_{addr}_{port}_{rank}"):
        path.unlink(missing_ok=True)
