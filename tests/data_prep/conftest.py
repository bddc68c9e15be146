"""Fixtures for output-location tests: a small disk (the read-only folder is shared, in
tests/conftest.py)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import mount_tmpfs


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MB tmpfs: the cleaned corpus fits, the shards do not."""
    folder = tmp_path / "disk"
    if not mount_tmpfs(folder, "size=2m"):
        pytest.skip("mounting a tmpfs needs root (test_output.py simulates a full disk)")
    yield folder
    subprocess.run(["umount", str(folder)], check=True)
