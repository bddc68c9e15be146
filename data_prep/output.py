"""Where data-prep commands write: checked before any work, replaced only when safe.

- `check_output_dir` / `check_output_file`: an `--out` that is an existing file (or
  folder), a parent that is a file, or a location that cannot be written is an
  `OutputError` before the first corpus line is read. A folder is replaced only when
  it is empty or holds the marker of a previous output of the same command
  (`manifest.json` for a build), so `--overwrite` never deletes unrelated files.
- `output_dir`: a temporary folder (`core.fileio.atomic_dir`) renamed onto the
  output at the end. It records the process that owns it, so a later run removes the
  `.NAME.partial-*` folders of runs that were killed (their process is gone); and a
  full disk becomes one message naming the output, with nothing left behind.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

from core.fileio import atomic_dir

log = logging.getLogger(__name__)
OWNER_FILE = ".partial-owner"  # "HOST PID" of the run writing a temporary folder


class OutputError(ValueError):
    """An output location that cannot be used; the message names it and what to do."""


def check_output_dir(path: str | os.PathLike[str], *, overwrite: bool, marker: str | None) -> None:
    """Raise `OutputError` unless `path` can become (or replace) an output folder.

    `marker=None`: files are written into the folder one by one and nothing is removed,
    so any existing folder will do."""
    final = Path(path)
    if final.exists() and not final.is_dir():
        raise OutputError(f"{final}: exists and is not a folder; give --out a folder path")
    if final.exists() and marker is not None:
        if not overwrite:
            raise OutputError(f"{final}: already exists; pass --overwrite to replace it")
        if not (final / marker).is_file() and any(final.iterdir()):
            raise OutputError(
                f"{final}: not empty and not an output of this command (no {marker}); "
                "refusing to replace it: remove it yourself or choose another --out"
            )
    _check_writable_parent(final)


def check_output_file(path: str | os.PathLike[str]) -> None:
    """Raise `OutputError` unless a file can be written at `path`."""
    final = Path(path)
    if final.is_dir():
        raise OutputError(f"{final}: is a folder; give --out a file path")
    _check_writable_parent(final)


def _check_writable_parent(final: Path) -> None:
    ancestor = final.absolute().parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{final}: cannot be created: {ancestor} is a file, not a folder")
    try:  # os.access says yes to root on a read-only mount: really try
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=ancestor))
    except OSError as err:
        raise OutputError(
            f"{final}: cannot write in {ancestor} ({err.strerror}); choose a writable --out"
        ) from None


def remove_stale_partials(path: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary folders of `path` left by runs whose process is gone."""
    final = Path(path)
    removed = []
    for partial in sorted(final.parent.glob(f".{final.name}.partial-*")):
        owner = _owner(partial)
        if owner is None:
            log.warning("%s: left by an unknown run; remove it by hand if none is running", partial)
        elif owner[0] == socket.gethostname() and not _alive(owner[1]):
            shutil.rmtree(partial, ignore_errors=True)
            removed.append(partial)
    return removed


def _owner(partial: Path) -> tuple[str, int] | None:
    try:
        host, pid = (partial / OWNER_FILE).read_text(encoding="utf-8").split()
        return host, int(pid)
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


@contextlib.contextmanager
def output_dir(path: str | os.PathLike[str], *, overwrite: bool, marker: str) -> Iterator[Path]:
    """Check `path`, clear stale partial folders, and yield a temporary folder that is
    renamed onto `path` when the block succeeds (and removed when it fails)."""
    final = Path(path)
    check_output_dir(final, overwrite=overwrite, marker=marker)
    remove_stale_partials(final)
    try:
        with atomic_dir(final, overwrite=True) as work:
            owner = work / OWNER_FILE
            owner.write_text(f"{socket.gethostname()} {os.getpid()}\n", encoding="utf-8")
            yield work
            owner.unlink()
    except OSError as err:
        if err.errno != errno.ENOSPC:
            raise
        raise OutputError(disk_full_message(final, err)) from None


def disk_full_message(
    final: Path,
    err: OSError,
    left: str = "the unfinished output was removed and nothing was written",
) -> str:
    """One line for a full disk: which output, what was left, what to do."""
    where = f" ({err.filename})" if err.filename else ""
    return (
        f"{final}: no space left on device{where}; {left}. Free "
        "space on that filesystem (or on the cache's, ALIGNINSTRUCT_CACHE) or choose "
        "another --out, then run again"
    )
