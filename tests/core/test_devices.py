"""core.devices: the collective device comes from the backend's device types (gloo: the
CPU; a CUDA-only backend such as NCCL: this rank's GPU), the model device from its
weights."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist

from core.devices import backend_device_types, collective_device, model_device
from tests.conftest import REPO_ROOT
from tests.support.fake_cuda import cuda_only_group, free_port, to_fake_cuda


def test_no_group_means_the_cpu() -> None:
    assert not dist.is_initialized() and collective_device() == torch.device("cpu")


def test_gloo_serves_the_cpu() -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)  # fmt: skip
    try:
        assert "cpu" in backend_device_types()
        assert collective_device() == torch.device("cpu")
    finally:
        dist.destroy_process_group()


def test_a_cuda_only_backend_serves_this_ranks_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_RANK", "1")
    with cuda_only_group():
        assert backend_device_types() == ["cuda"]
        assert collective_device() == torch.device("cuda", 1)


def test_model_device_is_where_its_weights_are() -> None:
    layer = torch.nn.Linear(2, 2)
    assert model_device(layer) == torch.device("cpu")
    assert model_device(to_fake_cuda(layer, index=2)) == torch.device("cuda", 2)
    assert model_device(torch.nn.ReLU()) == torch.device("cpu")


@pytest.mark.integration
def test_host_peak_is_this_process_not_its_parent() -> None:
    """A rank started by a large process (a launcher under a test suite) reports its own
    peak: Linux carries ru_maxrss across fork and exec, VmHWM starts afresh."""
    ballast = np.ones(100_000_000)  # 800 MB resident in the parent
    child = subprocess.run(
        [sys.executable, "-c", "from core.devices import host_peak_bytes as p; print(p())"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    assert ballast.sum() == 100_000_000
    assert int(child.stdout) < ballast.nbytes  # torch imported: a few hundred MB
