"""data_prep.output: output locations checked before work, stale partial folders, full disk."""

from __future__ import annotations

import errno
import os
import socket
from pathlib import Path

import pytest

from data_prep.output import (
    OWNER_FILE,
    OutputError,
    check_output_dir,
    check_output_file,
    output_dir,
    remove_stale_partials,
)


def test_out_that_is_an_existing_file(tmp_path: Path) -> None:
    out = tmp_path / "shards"
    out.write_text("not a folder\n")
    for overwrite in (False, True):
        with pytest.raises(OutputError, match=rf"{out}: exists and is not a folder"):
            check_output_dir(out, overwrite=overwrite, marker="manifest.json")
    assert out.read_text() == "not a folder\n"


def test_parent_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "runs").write_text("x")
    with pytest.raises(OutputError, match=rf"{tmp_path / 'runs'} is a file, not a folder"):
        check_output_dir(tmp_path / "runs" / "a" / "shards", overwrite=False, marker="m")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        check_output_file(tmp_path / "runs" / "a.links")


def test_read_only_location(read_only_dir: Path) -> None:
    with pytest.raises(OutputError, match=rf"cannot write in {read_only_dir}"):
        check_output_dir(read_only_dir / "shards", overwrite=False, marker="manifest.json")
    with pytest.raises(OutputError, match=rf"cannot write in {read_only_dir}"):
        check_output_file(read_only_dir / "sub" / "a.links")


def test_out_file_that_is_a_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match=rf"{tmp_path}: is a folder"):
        check_output_file(tmp_path)


def test_overwrite_replaces_only_a_previous_output(tmp_path: Path) -> None:
    unrelated = tmp_path / "mine"
    unrelated.mkdir()
    (unrelated / "thesis.tex").write_text("years of work")
    refused = pytest.raises(OutputError, match=r"no manifest\.json\); refusing to replace it")
    with refused, output_dir(unrelated, overwrite=True, marker="manifest.json") as work:
        (work / "manifest.json").write_text("{}")
    assert [p.name for p in unrelated.iterdir()] == ["thesis.tex"]
    previous = tmp_path / "previous"
    for content in ("old", "new"):
        with output_dir(previous, overwrite=True, marker="manifest.json") as work:
            (work / "manifest.json").write_text(content)
    assert [p.name for p in previous.iterdir()] == ["manifest.json"]  # no owner file left
    assert (previous / "manifest.json").read_text() == "new"
    empty = tmp_path / "empty"
    empty.mkdir()
    check_output_dir(empty, overwrite=True, marker="manifest.json")
    with pytest.raises(OutputError, match="already exists; pass --overwrite"):
        check_output_dir(previous, overwrite=False, marker="manifest.json")


# Linux hands out pids below pid_max: this one belongs to no process, ever.
DEAD_PID = int(Path("/proc/sys/kernel/pid_max").read_text())


def _partial(tmp_path: Path, suffix: str, owner: str | None) -> Path:
    folder = tmp_path / f".shards.partial-{suffix}"
    folder.mkdir()
    (folder / "corpus.de").write_text("half\n")
    if owner is not None:
        (folder / OWNER_FILE).write_text(owner)
    return folder


def test_stale_partials_of_dead_runs_are_removed(tmp_path: Path) -> None:
    host = socket.gethostname()
    gone = _partial(tmp_path, "a", f"{host} {DEAD_PID}\n")
    running = _partial(tmp_path, "b", f"{host} {os.getpid()}\n")
    elsewhere = _partial(tmp_path, "c", f"other-node {DEAD_PID}\n")
    unknown = _partial(tmp_path, "d", None)
    other_output = tmp_path / ".tok.partial-e"
    other_output.mkdir()
    (other_output / OWNER_FILE).write_text(f"{host} {DEAD_PID}\n")
    assert remove_stale_partials(tmp_path / "shards") == [gone]
    assert not gone.exists()
    assert running.exists() and elsewhere.exists() and unknown.exists() and other_output.exists()


def test_output_dir_clears_stale_partials_first(tmp_path: Path) -> None:
    stale = _partial(tmp_path, "x", f"{socket.gethostname()} {DEAD_PID}\n")
    with output_dir(tmp_path / "shards", overwrite=False, marker="manifest.json") as work:
        assert (work / OWNER_FILE).read_text().split() == [socket.gethostname(), str(os.getpid())]
        assert not stale.exists()
        (work / "manifest.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shards"]


def test_full_disk_is_one_message_and_leaves_nothing(tmp_path: Path) -> None:
    def fill(work: Path) -> None:
        (work / "manifest.json").write_text("x")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(work / "manifest.json"))

    target = tmp_path / "shards"
    with pytest.raises(OutputError) as err, output_dir(target, overwrite=False, marker="m") as work:
        fill(work)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'shards'}: no space left on device")
    assert "nothing was written" in message and "choose another --out" in message
    assert list(tmp_path.iterdir()) == []
