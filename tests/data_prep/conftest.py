"""Fixtures for output-location tests: a read-only folder and a small disk."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount_tmpfs(folder: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    folder.mkdir(parents=True, exist_ok=True)
    command = ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)]
    return subprocess.run(command, capture_output=True, check=False).returncode == 0


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder nobody may write in: a read-only tmpfs as root, else mode 0555."""
    folder = tmp_path / "ro"
    if _mount_tmpfs(folder, "ro,size=1m"):
        yield folder
        subprocess.run(["umount", str(folder)], check=True)
        return
    folder.mkdir(exist_ok=True)
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        pytest.skip("cannot make a read-only folder here (root without mount)")
    yield folder
    folder.chmod(0o755)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: the cleaned corpus fits, the shards do not."""
    folder = tmp_path / "disk"
    if not _mount_tmpfs(folder, "size=2m"):
        pytest.skip("mounting a tmpfs needs root (test_output.py simulates a full disk)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
