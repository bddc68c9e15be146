"""A second process that owns an output (core.lock), for the tests of refused writers.

python -m tests.support.lock_holder PATH      # prints "held" once it owns PATH, then waits
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO_ROOT


def start_holder(path: Path) -> subprocess.Popen[str]:
    """A process that holds the lock of `path` until killed (returns once it holds it)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.support.lock_holder", str(path)], cwd=REPO_ROOT,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


if __name__ == "__main__":
    from core.lock import hold

    hold(sys.argv[1], "test holder")
    print("held", flush=True)
    time.sleep(3600)
