"""Issue 20's data-prep cases on the real command line: a second build into one --out,
a tokenizer without enough text or disk, `align` on empty files and on a 1 MB line."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.data_prep.test_cli import assert_user_error, data_prep
from tests.support.lock_holder import start_holder

pytestmark = pytest.mark.integration  # every test runs the CLI in a subprocess


def test_second_build_into_one_out_is_refused(
    freedict_corpus: Path, tokenizer_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "shards"
    holder = start_holder(out)  # another process owns --out (as a running build does)
    try:
        result = data_prep("build", "freedict", f"corpus.path={freedict_corpus}/",
                           f"tokenizer={tokenizer_dir}", "curriculum=MT", "--out", out,
                           cwd=tmp_path)  # fmt: skip
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert_user_error(result, f"{out}: already being written by another process",
                      f"pid {holder.pid}")  # fmt: skip
    assert not out.exists() and "manifest:" not in result.stdout


def test_tokenizer_without_enough_text_for_its_vocabulary(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    out = tmp_path / "tok"
    result = data_prep("tokenizer", "--out", out, empty, cwd=tmp_path)
    assert_user_error(result, empty, "vocabulary of 260 entries, not the 4,000 asked for",
                      "--allow-smaller-vocab")  # fmt: skip
    assert not out.exists()
    kept = data_prep("tokenizer", "--allow-smaller-vocab", "--out", out, empty, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "warning:" in kept.stderr and "keeping 260" in kept.stderr
    assert (out / "tokenizer.json").is_file()


def test_tokenizer_on_a_full_disk(freedict_corpus: Path, tmp_path: Path, small_disk: Path) -> None:
    # Room for the small JSON files only: tokenizer.json, written by the tokenizers
    # library's Rust code (which reports ENOSPC as a plain Exception), does not fit.
    free = os.statvfs(small_disk)
    (small_disk / "filler").write_bytes(b"x" * (free.f_bavail * free.f_frsize - 16 * 1024))
    out = small_disk / "tok"
    result = data_prep("tokenizer", "--vocab-size", "600", "--out", out,
                       freedict_corpus / "dev.en", cwd=tmp_path)  # fmt: skip
    assert_user_error(result, f"{out}: no space left on device", "choose another --out")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]


def test_align_on_empty_files(tmp_path: Path) -> None:
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("", encoding="utf-8")
    tgt.write_text("", encoding="utf-8")
    result = data_prep("align", "--src", src, "--tgt", tgt, "--out", tmp_path / "a.links",
                       cwd=tmp_path)  # fmt: skip
    assert_user_error(result, src, tgt, "nothing to align")
    assert not (tmp_path / "a.links").exists()


def test_align_gives_a_1mb_line_no_links(tmp_path: Path) -> None:
    """build drops such a pair as too_long; align keeps the output line-aligned instead."""
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src_lines = [
        "Das Haus ist rot .",
        "Der Hund schläft .",
        "Wort " * 200_000,
        "Ich sehe das Haus .",
    ]
    tgt_lines = ["The house is red .", "The dog sleeps .", "word " * 200_000, "I see the house ."]
    src.write_text("\n".join(src_lines) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(tgt_lines) + "\n", encoding="utf-8")
    out = tmp_path / "a.links"
    result = data_prep("align", "--src", src, "--tgt", tgt, "--out", out, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "1 pair(s) longer than --max-chars=1000 characters (lines 3)" in result.stderr
    links = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(links) == 4 and links[2] == "" and links[0] and links[3]
