"""Atomic file writes and content hashing.

Every output of data prep is written under a temporary name in the target folder
and renamed into place, so an interrupted run never leaves a file that a reader
would take for a finished one.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

_CHUNK = 1 << 20


def _umask() -> int:
    """The process umask (read by setting it, then restoring it at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` on success."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.chmod(fd, 0o666 & ~_umask())  # mkstemp makes it 0600; the result must be readable as usual
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside `path` for writing; rename it onto `path` on success."""
    encoding = None if "b" in mode else "utf-8"
    with atomic_path(path) as tmp, open(tmp, mode, encoding=encoding) as handle:
        yield handle


def write_lines(path: str | os.PathLike[str], lines: Iterable[str]) -> int:
    """Atomically write one line per item; returns the number of lines written."""
    count = 0
    with atomic_open(path) as handle:
        for line in lines:
            handle.write(line)
            handle.write("\n")
            count += 1
    return count


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Atomically write `obj` as indented, key-sorted JSON."""
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=2, sort_keys=True, ensure_ascii=False)
        handle.write("\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _plain_modes(folder: Path) -> None:
    """Give everything under `folder` the mode a plain create would (some writers, such
    as safetensors, make private 0600 files): 0666 or 0777 (executables, folders),
    less the umask."""
    mask = _umask()
    for path in folder.rglob("*"):
        if path.is_symlink():
            continue
        executable = path.is_dir() or path.stat().st_mode & 0o111
        path.chmod((0o777 if executable else 0o666) & ~mask)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Yield a fresh temporary folder beside `path`; move it onto `path` on success.

    With `overwrite`, an existing `path` is removed just before the move; without,
    an existing `path` is an error (raised before any work starts). The folder and
    its files get the modes a plain create would (0755 / 0644 under the usual umask), not
    mkdtemp's 0700 or a writer's private 0600.
    """
    final = Path(path)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: already exists (use overwrite to replace it)")
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.partial-", dir=final.parent))
    work.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; the result must be readable as usual
    try:
        yield work
        _plain_modes(work)
        if final.exists():
            shutil.rmtree(final)
        os.replace(work, final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
