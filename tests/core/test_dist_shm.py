"""Stale DeepSpeed all-reduce buffers in /dev/shm: removed only when no process holds them."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.dist import SHM, remove_stale_shm_buffers

HOLD = (
    "import mmap, sys, time\n"
    "f = open(sys.argv[1], 'r+b'); m = mmap.mmap(f.fileno(), 0); f.close()\n"
    "print('mapped', flush=True); time.sleep(120)\n"
)


def fake_buffer(name: str, age_s: float) -> Path:
    path = SHM / name
    path.write_bytes(b"\x00" * 4096)
    old = time.time() - age_s
    os.utime(path, (old, old))
    return path


@pytest.mark.integration  # a second process holds one buffer
def test_only_old_unheld_buffers_of_this_user_are_removed() -> None:
    tag = f"test{os.getpid()}"
    stale = fake_buffer(f"deepspeed_allreduce_{os.getuid()}_127.0.0.9_{tag}_0", 600)
    young = fake_buffer(f"deepspeed_allreduce_{os.getuid()}_127.0.0.9_{tag}_1", 0)
    held = fake_buffer(f"deepspeed_allreduce_{os.getuid()}_127.0.0.9_{tag}_2", 600)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(held)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "mapped"
        removed = remove_stale_shm_buffers(min_age_s=60)
        assert stale in removed and not stale.exists()
        assert young.exists() and held.exists()
        assert young not in removed and held not in removed
    finally:
        holder.kill()
        holder.wait()
        for path in (stale, young, held):
            path.unlink(missing_ok=True)
