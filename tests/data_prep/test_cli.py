"""`python -m data_prep`: user mistakes exit 2 with `error: ...` and no traceback."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration  # every test runs the CLI in a subprocess

GOOD_RECIPE = """\
name: cli-test
pairs: [de-en]
corpus: {format: files, path: data/}
tokenizer: tok
"""


def data_prep(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run `python -m data_prep ARGS` in `cwd`, with the repository importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env["ALIGNINSTRUCT_CACHE"] = str(cwd / "cache")
    return subprocess.run(
        [sys.executable, "-m", "data_prep", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_user_error(result: subprocess.CompletedProcess[str], *mentions: str | Path) -> None:
    """Exit 2, one `error: ...` message naming each of `mentions`, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert result.stderr.startswith("error: "), result.stderr
    # One message: a single line, or a config error's header and its list of problems.
    for line in result.stderr.splitlines()[1:]:
        assert line.startswith("  - "), result.stderr
    for mention in mentions:
        assert str(mention) in result.stderr, (mention, result.stderr)


def test_build_with_missing_recipe_file(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-recipe.yaml"
    result = data_prep("build", missing, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, missing, "file not found")
    assert not (tmp_path / "out").exists()


def test_build_with_unknown_recipe_key(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(GOOD_RECIPE + "shuffle_buffer: 10\n", encoding="utf-8")
    result = data_prep("build", recipe, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, recipe, "shuffle_buffer: unknown key")
    assert not (tmp_path / "out").exists()


def test_build_with_unknown_override_key(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(GOOD_RECIPE, encoding="utf-8")
    result = data_prep("build", recipe, "clean.dedupe=true", "--out", "out", cwd=tmp_path)
    assert_user_error(result, "clean.dedupe: unknown key")


def test_build_with_a_folder_for_recipe(tmp_path: Path) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    result = data_prep("build", folder, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, folder)


def test_build_with_bad_templates_file(tmp_path: Path) -> None:
    templates = tmp_path / "templates.yaml"
    templates.write_text('mt_prompt: "{x}"\nmt_promt: "{x}"\n', encoding="utf-8")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(GOOD_RECIPE + f"templates: {templates}\n", encoding="utf-8")
    result = data_prep("build", recipe, "--out", tmp_path / "out", cwd=tmp_path)
    assert_user_error(result, templates, "mt_promt")
    assert not (tmp_path / "out").exists()


def test_clean_with_mismatched_line_counts(tmp_path: Path) -> None:
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("eins\nzwei\ndrei\n", encoding="utf-8")
    tgt.write_text("one\ntwo\n", encoding="utf-8")
    result = data_prep("clean", "--src", src, "--tgt", tgt, "--out", "out/a", cwd=tmp_path)
    assert_user_error(result, f"{src} has 3 lines", f"{tgt} has 2")
    assert not (tmp_path / "out").exists()


def test_clean_with_missing_file(tmp_path: Path) -> None:
    src = tmp_path / "a.de"
    src.write_text("eins\n", encoding="utf-8")
    result = data_prep(
        "clean", "--src", src, "--tgt", tmp_path / "a.en", "--out", "out/a", cwd=tmp_path
    )
    assert_user_error(result, tmp_path / "a.en")


def test_inspect_on_an_empty_directory(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = data_prep("inspect", empty, cwd=tmp_path)
    assert_user_error(result, empty / "manifest.json")


def test_align_with_invalid_utf8_input(tmp_path: Path) -> None:
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_bytes(b"caf\xe9 noir\n")
    tgt.write_bytes(b"black coffee\n")
    result = data_prep(
        "align", "--src", src, "--tgt", tgt, "--out", tmp_path / "a.links", cwd=tmp_path
    )
    assert_user_error(result, src)


def test_clean_writes_outputs_and_report(tmp_path: Path) -> None:
    src, tgt = tmp_path / "in.de", tmp_path / "in.en"
    src.write_bytes(
        b"  Hallo Welt.\n"  # kept, stripped
        b"Hallo Welt.\n"  # duplicate
        b"\n"  # empty
        b"caf\xe9\n"  # invalid utf-8
        b"Hal\x07lo.\n"  # control character
        b"Das ist ein ziemlich langer Satz.\n"  # too long for --max-chars 30
        b"eins zwei drei vier f\xc3\xbcnf sechs\n"  # length ratio (6 words vs 1)
        b"Guten Morgen.\n"  # kept
    )
    tgt.write_bytes(
        b"Hello world.\n"
        b"Hello world.\n"
        b"Nothing.\n"
        b"cafe\n"
        b"Hello.\n"
        b"This is a rather long sentence.\n"
        b"six\n"
        b"Good morning.\n"
    )
    result = data_prep(
        "clean",
        "--src", src,
        "--tgt", tgt,
        "--out", "out/clean",
        "--max-chars", "30",
        "--max-ratio", "3",
        "--dedup",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "clean.de").read_text(encoding="utf-8") == (
        "Hallo Welt.\nGuten Morgen.\n"
    )
    assert (tmp_path / "out" / "clean.en").read_text(encoding="utf-8") == (
        "Hello world.\nGood morning.\n"
    )
    expected = {
        "seen": 8,
        "kept": 2,
        "dropped": {
            "empty": 1,
            "invalid_utf8": 1,
            "control_chars": 1,
            "too_long": 1,
            "identical": 0,
            "wrong_script": 0,
            "length_ratio": 1,
            "duplicate": 1,
        },
    }
    report = json.loads((tmp_path / "out" / "clean.report.json").read_text(encoding="utf-8"))
    assert report == expected
    assert json.loads(result.stdout) == expected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "clean.de",
        "clean.en",
        "clean.report.json",
    ]


def test_clean_does_not_lose_a_side_when_suffixes_match(tmp_path: Path) -> None:
    # Both inputs end in .txt: the source side must not be overwritten by the target side.
    src, tgt = tmp_path / "source.txt", tmp_path / "target.txt"
    src.write_text("Hallo Welt.\n", encoding="utf-8")
    tgt.write_text("Hello world.\n", encoding="utf-8")
    result = data_prep("clean", "--src", src, "--tgt", tgt, "--out", "out/c", cwd=tmp_path)
    if result.returncode == 0:
        written = [p.read_text(encoding="utf-8") for p in (tmp_path / "out").iterdir()]
        assert "Hallo Welt.\n" in written
        assert "Hello world.\n" in written
    else:
        assert_user_error(result, ".txt")


# --- output locations: checked before any work -----------------------------------------


def test_build_out_that_is_a_file_fails_before_work(tmp_path: Path) -> None:
    """The recipe's corpus is missing too: the output is reported first, so nothing ran."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(GOOD_RECIPE, encoding="utf-8")
    out = tmp_path / "shards"
    out.write_text("keep me\n", encoding="utf-8")
    result = data_prep("build", recipe, "--out", out, "--overwrite", cwd=tmp_path)
    assert_user_error(result, f"{out}: exists and is not a folder")
    assert out.read_text(encoding="utf-8") == "keep me\n"
    result = data_prep("build", recipe, "--out", out / "sub", cwd=tmp_path)
    assert_user_error(result, f"{out} is a file, not a folder")


def test_overwrite_keeps_an_unrelated_folder(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(GOOD_RECIPE, encoding="utf-8")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("unrelated\n", encoding="utf-8")
    result = data_prep("build", recipe, "--out", mine, "--overwrite", cwd=tmp_path)
    assert_user_error(result, mine, "no manifest.json", "refusing to replace it")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
    result = data_prep("tokenizer", "--out", mine, recipe, cwd=tmp_path)
    assert_user_error(result, mine, "no tokenizer.json")
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_read_only_outputs(tmp_path: Path, read_only_dir: Path) -> None:
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("Hallo Welt.\n", encoding="utf-8")
    tgt.write_text("Hello world.\n", encoding="utf-8")
    commands = [
        ("align", "--src", src, "--tgt", tgt, "--out", read_only_dir / "a.links"),
        ("clean", "--src", src, "--tgt", tgt, "--out", read_only_dir / "c"),
        ("tokenizer", "--out", read_only_dir / "tok", src),
        ("split", "--pair", "de-en", "--src", src, "--tgt", tgt, "--out", read_only_dir / "s"),
        ("freedict", "--deb", src, "--out", read_only_dir / "fd"),
        ("demo", "--deb", src, "--out", read_only_dir / "demo"),
    ]
    for command in commands:
        assert_user_error(data_prep(*command, cwd=tmp_path), f"cannot write in {read_only_dir}")


def test_align_out_that_is_a_folder(tmp_path: Path) -> None:
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("Hallo Welt.\n", encoding="utf-8")
    tgt.write_text("Hello world.\n", encoding="utf-8")
    result = data_prep("align", "--src", src, "--tgt", tgt, "--out", tmp_path, cwd=tmp_path)
    assert_user_error(result, f"{tmp_path}: is a folder")


def test_clean_on_a_full_disk(tmp_path: Path, small_disk: Path) -> None:
    with open(small_disk / "filler", "wb", buffering=0) as handle, contextlib.suppress(OSError):
        while True:  # fill the disk to the last page
            handle.write(b"x" * 4096)
    src, tgt = tmp_path / "a.de", tmp_path / "a.en"
    src.write_text("Hallo Welt.\n" * 200, encoding="utf-8")
    tgt.write_text("Hello world.\n" * 200, encoding="utf-8")
    out = small_disk / "c"
    result = data_prep("clean", "--src", src, "--tgt", tgt, "--out", out, cwd=tmp_path)
    assert_user_error(result, f"{out}: no space left on device", "choose another --out")
    assert [p.name for p in small_disk.iterdir()] == ["filler"]
