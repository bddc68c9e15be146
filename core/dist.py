"""Distributed helpers shared by training and eval: who am I, clean teardown, /dev/shm.

Rank and world size are read from the launcher's environment before any process group
exists (deepspeed and torchrun set RANK/WORLD_SIZE; under mpirun Open MPI or MPICH set
their own names), so config errors can be printed once, by rank 0, before init.

DeepSpeed's CPU all-reduce keeps a ~66 MB buffer per rank in /dev/shm, named
`deepspeed_*_{uid}_{addr}_{port}_{rank}`, and never removes it. Every rank maps every
buffer while `init_distributed` runs, so once all ranks are past it the names can go
(`release_shm_names`): the memory stays mapped until the last rank exits, and nothing is
left behind on any exit, a SIGKILL included. Buffers of runs that died during
initialisation (or ran older code) are removed at start by `remove_stale_shm_buffers`.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist

_RANK_VARS = ("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")
_WORLD_VARS = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE")
SHM = Path("/dev/shm")
SHM_PATTERN = "deepspeed_*"


def _first_int(names: tuple[str, ...], default: int) -> int:
    return next((int(os.environ[n]) for n in names if n in os.environ), default)


def launched_rank() -> int:
    """This process's global rank as the launcher set it (0 when launched alone)."""
    return _first_int(_RANK_VARS, 0)


def launched_world_size() -> int:
    """The number of ranks, known before init (1 when launched alone)."""
    return _first_int(_WORLD_VARS, 1)


TIMEOUT_VAR = "ALIGNINSTRUCT_DIST_TIMEOUT_S"


def group_timeout() -> timedelta | None:
    """The process group's collective timeout: $ALIGNINSTRUCT_DIST_TIMEOUT_S seconds when
    set (tests shorten it to prove that no rank waits on another's long work), else
    PyTorch's default."""
    value = os.environ.get(TIMEOUT_VAR)
    return timedelta(seconds=float(value)) if value else None


def init_process_group() -> tuple[int, int]:
    """(rank, world): joins the launcher's process group when there is more than one rank
    (nccl on GPU, gloo on CPU); (0, 1) alone."""
    from core.devices import default_backend

    world = launched_world_size()
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(default_backend(), timeout=group_timeout())
    return (dist.get_rank(), world) if world > 1 else (0, 1)


def finish(status: int = 0) -> None:
    """Leave cleanly: torch 2.13's gloo can abort at interpreter exit, so flush, tear the
    process group down and exit at once (with `status`)."""
    sys.stdout.flush()
    sys.stderr.flush()
    if dist.is_initialized():
        rank = dist.get_rank()
        dist.barrier()
        dist.destroy_process_group()
        remove_shm_buffers(rank)
    os._exit(status)


def _run_buffers(rank: int) -> list[Path]:
    """This run's buffer names for `rank` (by master address and port), [] on GPU."""
    addr, port = os.environ.get("MASTER_ADDR"), os.environ.get("MASTER_PORT")
    if torch.cuda.is_available() or not addr or not port:
        return []
    return list(SHM.glob(f"deepspeed_*_{addr}_{port}_{rank}"))


def remove_shm_buffers(rank: int) -> None:
    """Remove this rank's all-reduce buffer name (safe once every rank has mapped it)."""
    for path in _run_buffers(rank):
        path.unlink(missing_ok=True)


def release_shm_names() -> None:
    """After `deepspeed.init_distributed`: wait until every rank has mapped every buffer,
    then unlink this rank's name, so that no exit path can leave it in /dev/shm."""
    if dist.is_initialized():
        dist.barrier()
        remove_shm_buffers(dist.get_rank())


def _held_paths() -> set[str]:
    """Every /dev/shm path a live process maps or holds open. Processes whose maps cannot
    be read are skipped: another user's cannot open this user's 0600 buffers, and a rank
    is an ordinary process its own user can inspect (unreadable ones are protected
    system processes, such as a sandbox's init)."""
    held: set[str] = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            with open(proc / "maps", encoding="utf-8", errors="replace") as maps:
                held.update(line.split(None, 5)[-1].strip() for line in maps if "/dev/shm/" in line)
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/dev/shm/"):
                    held.add(target)
        except (FileNotFoundError, PermissionError, ProcessLookupError):
            continue  # ended meanwhile, or not inspectable (see above)
    return held


def remove_stale_shm_buffers(min_age_s: float = 60.0) -> list[Path]:
    """Remove DeepSpeed all-reduce buffers that runs of this user left behind: owned by
    this user, untouched for `min_age_s` (a run that is starting has not mapped its own
    yet) and mapped or held open by no live process. Returns what was removed."""
    me, now = os.getuid(), time.time()
    candidates = []
    for path in SHM.glob(SHM_PATTERN):
        try:
            info = path.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == me and now - info.st_mtime >= min_age_s:
            candidates.append(path)
    if not candidates:
        return []
    held = _held_paths()
    stale = [path for path in candidates if str(path) not in held]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
