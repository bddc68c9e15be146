"""One writer per output: an owner lock beside a build's `--out`, a run folder, an eval's `--out`.

`hold(path, what)` takes an exclusive `flock` on `.NAME.lock` beside `path` and keeps it
for the life of the process. The kernel drops the lock when the process ends in any way
(exit, crash, SIGKILL), so a lock left by a dead run never blocks the next one, and no
stale-lock clean-up is needed. The file also records who holds it (pid, host, command,
start time), so a refused second writer is told which run owns the output. The lock
file itself is never removed: removing a lock file another process may be about to
lock would let two writers in.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import IO

_HELD: dict[str, IO[str]] = {}  # lock path -> open file: the lock lives as long as it does


class LockError(ValueError):
    """The output is being written by another process (the message names it)."""


def lock_path(path: str | os.PathLike[str]) -> Path:
    """`.NAME.lock` beside `path` (outputs are often replaced by a rename, so not inside)."""
    final = Path(path).absolute()
    return final.parent / f".{final.name}.lock"


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        info = {}
    if not info:
        return "another process (it has not said which yet)"
    return (
        f"{info.get('what')}, pid {info.get('pid')} on {info.get('host')}, started "
        f"{info.get('started')}: {info.get('command')}"
    )


def hold(path: str | os.PathLike[str], what: str) -> Path | None:
    """Lock `path` for this process (`what`: the command, for the message a second writer
    gets), or raise LockError naming the process that holds it.

    Taking a lock this process already holds is a no-op. Where no lock file can be made
    (a read-only place), None: the command's own output checks name that problem."""
    lock = lock_path(path)
    if str(lock) in _HELD:
        return lock
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (kept open: it is the lock)
    except OSError:
        return None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise LockError(
            f"{Path(path)}: already being written by another process ({holder}); two "
            "writers would overwrite each other's output. Wait for it to finish, stop it, or "
            f"choose another output (the lock, {lock}, goes away with its process)"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(
        json.dumps(
            {
                "what": what,
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "command": " ".join(sys.argv),
                "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            }
        )
    )
    handle.flush()
    _HELD[str(lock)] = handle
    return lock


def release(path: str | os.PathLike[str]) -> None:
    """Give the lock up before the process ends (tests, long-lived callers)."""
    handle = _HELD.pop(str(lock_path(path)), None)
    if handle is not None:
        handle.close()  # closing the last descriptor drops the flock
