"""atomic_dir: the finished folder has the mode a plain mkdir would give, not mkdtemp's."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from core.fileio import atomic_dir


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_atomic_dir_follows_the_umask(tmp_path: Path, umask: int) -> None:
    previous = os.umask(umask)
    try:
        with atomic_dir(tmp_path / "export" / "model") as work:
            (work / "weights.bin").write_bytes(b"\x00" * 8)
            (work / "weights.bin").chmod(0o600)  # as safetensors writes its files
            (work / "sub").mkdir()
        plain = tmp_path / "plain"
        plain.mkdir()
    finally:
        os.umask(previous)
    out = tmp_path / "export" / "model"
    mode = stat.S_IMODE(out.stat().st_mode)
    assert mode == stat.S_IMODE(plain.stat().st_mode) == 0o777 & ~umask
    assert stat.S_IMODE((out / "weights.bin").stat().st_mode) == 0o666 & ~umask
    assert not list((tmp_path / "export").glob(".model.partial-*"))


def test_atomic_path_files_follow_the_umask(tmp_path: Path) -> None:
    from core.fileio import write_json

    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o644
