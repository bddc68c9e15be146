"""Which device a tensor must live on: the one rule shared by training and eval.

- A tensor handed to a collective lives on the device the process group's backend
  serves (`collective_device`): NCCL serves CUDA only, so a CPU tensor in an NCCL
  all-reduce raises "No backend type associated with device type cpu"; gloo serves the
  CPU (and CUDA), so the CPU is taken there and values need no copy.
- A tensor handed to a model lives on the model's device (`model_device`).
- A model is placed on this rank's GPU when there is one, else on the CPU
  (`compute_device`); the process group is NCCL on GPUs, gloo on CPUs (`default_backend`).

Nothing else in the code picks a device. The CPU test suite checks the first two rules
against a process group that serves CUDA only and a model that reports a CUDA device
(tests/support/fake_cuda.py, docs/gpu.md).
"""

from __future__ import annotations

import itertools
import os
import resource
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

# Launchers' names for this process's rank on its node (torchrun/deepspeed, Open MPI, MPICH).
_LOCAL_RANK_VARS = ("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID")


def local_rank() -> int:
    """This process's rank on its node, as the launcher set it (0 when launched alone)."""
    return next((int(os.environ[n]) for n in _LOCAL_RANK_VARS if n in os.environ), 0)


def default_backend() -> str:
    """The process group backend for this machine: NCCL with CUDA, gloo without."""
    return "nccl" if torch.cuda.is_available() else "gloo"


def compute_device() -> torch.device:
    """Where this rank runs a model: its GPU (cuda:LOCAL_RANK) when CUDA is present."""
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank())
    return torch.device("cpu")


def backend_device_types(group: dist.ProcessGroup | None = None) -> list[str]:
    """The device types the group's backends serve, read from its backend config
    ("cpu:gloo,cuda:gloo" for gloo, "cuda:nccl" for NCCL)."""
    config = str(dist.get_backend_config(group))
    return [item.split(":", 1)[0].strip() for item in config.split(",") if ":" in item]


def collective_device(group: dist.ProcessGroup | None = None) -> torch.device:
    """The device of the tensors this rank hands to the group's collectives: the CPU when
    the backend serves it, else this rank's device of the type it serves (cuda:LOCAL_RANK
    under NCCL). The CPU when no process group exists (nothing to reduce)."""
    if not dist.is_initialized():
        return torch.device("cpu")
    served = backend_device_types(group)
    if "cpu" in served or not served:
        return torch.device("cpu")
    return torch.device(served[0], local_rank())


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's weights (its first parameter, else buffer; the CPU for a
    module that holds neither)."""
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return tensor.device
    return torch.device("cpu")


def host_peak_bytes() -> int:
    """This process's peak resident memory: Linux's `VmHWM`, which exec starts afresh.
    Not `ru_maxrss`, which Linux carries across fork and exec, so that a rank started by
    a large process (a launcher under a test suite, a notebook) reports its parent's size."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB elsewhere
