"""Helpers to launch real 2-rank DeepSpeed runs of training/train.py on CPU."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DEEPSPEED = str(Path(sys.executable).with_name("deepspeed"))
TORCHRUN = str(Path(sys.executable).with_name("torchrun"))
TRAIN = str(REPO_ROOT / "training" / "train.py")
TINY = str(REPO_ROOT / "training" / "configs" / "tiny-cpu.yaml")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(*overrides: str, ranks: int = 2, launcher: str = "deepspeed") -> list[str]:
    """deepspeed (one CPU "device" per NUMA node, hence --num_accelerators) or torchrun."""
    port = str(free_port())  # never collide with another run on this machine
    if launcher == "torchrun":
        prefix = [TORCHRUN, "--nproc_per_node", str(ranks), "--master_port", port]
    else:
        prefix = [DEEPSPEED, "--num_accelerators", str(ranks), "--master_port", port]
    return [*prefix, TRAIN, "--config", TINY, *overrides]


def train_env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def run_training(
    *overrides: str, timeout: int = 600, launcher: str = "deepspeed"
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        launch_command(*overrides, launcher=launcher), cwd=REPO_ROOT, env=train_env(),
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def losses(run_dir: Path) -> dict[int, float]:
    """The last logged loss of every step (a resumed run logs some steps twice)."""
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["step"]: row["loss"] for row in map(json.loads, lines)}


@pytest.fixture(scope="session", autouse=True)
def clean_shared_memory() -> Iterator[None]:
    """Remove what killed runs leave in /dev/shm (finished runs remove their own)."""
    before = set(Path("/dev/shm").glob("deepspeed_*")) | set(Path("/dev/shm").glob("mpich_*"))
    yield
    after = set(Path("/dev/shm").glob("deepspeed_*")) | set(Path("/dev/shm").glob("mpich_*"))
    for path in after - before:
        path.unlink(missing_ok=True)
