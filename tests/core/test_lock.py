"""core.lock: a second writer is refused while the owner lives, and a crashed owner's
lock goes with its process (two real processes)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from core.lock import LockError, hold, lock_path, release
from tests.support.lock_holder import start_holder

pytestmark = pytest.mark.integration  # starts a second process


def test_second_writer_refused_until_the_owner_dies(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    holder = start_holder(out)
    try:
        with pytest.raises(LockError) as refused:
            hold(out, "data_prep build")
        message = str(refused.value)
        assert f"{out}: already being written by another process (test holder, " in message
        assert f"pid {holder.pid}" in message and "lock_holder.py" in message
    finally:
        holder.send_signal(signal.SIGKILL)  # a crash: no clean-up code runs
        holder.wait()
    assert lock_path(out).exists()  # the file stays; the kernel dropped the lock
    try:
        assert hold(out, "data_prep build") == lock_path(out)
        assert hold(out, "data_prep build") == lock_path(out)  # held already: no-op
    finally:
        release(out)


def test_no_lock_where_nothing_can_be_written(read_only_dir: Path) -> None:
    assert hold(read_only_dir / "out", "eval run") is None  # the output checks say why
