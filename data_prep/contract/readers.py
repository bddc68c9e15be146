"""Readers for parallel corpora: OPUS-100 layout, file pairs, TSV, Hugging Face datasets.

Every reader streams `RawPair`s (1-based line number, source text, target text) and
never holds the corpus in memory. File readers yield bytes so that cleaning can
count invalid UTF-8 instead of crashing on it; the Hugging Face reader yields str.

UTF-8 is decoded in one place for every consumer: `decode_utf8` (None when invalid:
cleaning counts it as a drop), `decode_line` and `read_lines` (an error naming the
file and line: eval and the CLI). A UTF-8 byte-order mark at the start of a file is
removed when the file is read, so it never reaches a sample, a prompt or a score.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

CorpusFormat = Literal["opus100", "files", "tsv", "hf"]
FORMATS: tuple[str, ...] = ("opus100", "files", "tsv", "hf")
UTF8_BOM = b"\xef\xbb\xbf"
# Alternative references: `{reference file}.alt`, line-aligned with it, each line holding
# that segment's further references separated by tabs (an empty line: none).
ALTERNATIVES_SUFFIX = ".alt"
ALTERNATIVES_SEPARATOR = "\t"


class CorpusError(ValueError):
    """Bad or missing corpus input; the message names the file and what was expected."""


class RawPair(NamedTuple):
    line: int
    src: bytes | str
    tgt: bytes | str


@dataclass(frozen=True)
class CorpusSpec:
    """Where one language pair's text is.

    - `opus100`: `path` is the release root (the folder holding `v1.0/`, or `v1.0`
      itself); files are found by language codes and split.
    - `files`: `path` is a prefix; files are `{path}{split}.{lang}` when `split` is
      used, e.g. `data/train.de` for prefix `data/`. Or give `src_file`/`tgt_file`.
    - `tsv`: `path` is a file with two tab-separated columns per line (`{split}` in
      the path is replaced by the split name); `columns` names the language of each
      column (`[hu, en]`), so either direction reads the right side as the source.
    - `hf`: `path` is a `datasets.save_to_disk` folder, or a parquet file/glob
      (`{split}` replaced); rows hold `translation: {lang: text}` (OPUS-100 on the
      hub) or one column per language code.
    """

    format: CorpusFormat
    path: str
    src_file: str | None = None
    tgt_file: str | None = None
    columns: tuple[str, ...] | None = None

    def problems(self, key: str) -> list[str]:
        if self.format not in FORMATS:
            return [f"{key}.format: {self.format!r} is not one of {FORMATS}"]
        if not self.path and not (self.src_file and self.tgt_file):
            return [f"{key}.path: required for format {self.format!r}"]
        if self.format == "tsv" and (self.columns is None or len(self.columns) != 2):
            return [_columns_problem(key, self)]
        if self.columns is not None and self.format != "tsv":
            return [f"{key}.columns: only for format 'tsv' (this corpus is {self.format!r})"]
        return []

    def pair_problems(self, key: str, src: str, tgt: str) -> list[str]:
        """Problems reading this corpus for the direction src->tgt (a tsv's columns must
        name both languages); check them before any work, per pair."""
        if self.format != "tsv":
            return []
        if self.columns is None or len(self.columns) != 2 or {src, tgt} != set(self.columns):
            return [_columns_problem(key, self, src, tgt)]
        return []


def _columns_problem(key: str, spec: CorpusSpec, src: str = "", tgt: str = "") -> str:
    wanted = f"[{src}, {tgt}] in file order" if src else "[SRC, TGT] in file order, e.g. [hu, en]"
    found = "is missing" if spec.columns is None else f"is {list(spec.columns)}"
    return (
        f"{key}.columns: {found}; a tsv corpus ({spec.path}) must name the language of "
        f"each of its two columns: {wanted}"
    )


def opus100_files(
    root: str | os.PathLike[str], src: str, tgt: str, split: str
) -> tuple[Path, Path]:
    """Paths of one OPUS-100 split; pairs are stored under alphabetical codes."""
    base = Path(root)
    if (base / "v1.0").is_dir():
        base = base / "v1.0"
    a, b = sorted((src, tgt))
    kind = "supervised" if "en" in (a, b) else "zeroshot"
    folder = base / kind / f"{a}-{b}"
    return folder / f"opus.{a}-{b}-{split}.{src}", folder / f"opus.{a}-{b}-{split}.{tgt}"


def corpus_files(spec: CorpusSpec, src: str, tgt: str, split: str) -> list[Path]:
    """The files a spec reads for (src, tgt, split); used to list missing inputs up front."""
    if spec.format == "opus100":
        return list(opus100_files(spec.path, src, tgt, split))
    if spec.format == "files":
        if spec.src_file and spec.tgt_file:
            return [Path(spec.src_file), Path(spec.tgt_file)]
        return [Path(f"{spec.path}{split}.{src}"), Path(f"{spec.path}{split}.{tgt}")]
    if spec.format == "tsv":
        return [Path(spec.path.replace("{split}", split))]
    path = spec.path.replace("{split}", split)
    return [] if any(ch in path for ch in "*?[") else [Path(path)]


def alternatives_file(spec: CorpusSpec, src: str, tgt: str, split: str) -> Path | None:
    """Where the target side's alternative references would be: beside the target file of
    a `files` or `opus100` corpus (`test.en` -> `test.en.alt`); None for the formats that
    hold one text per side (tsv, hf)."""
    if spec.format not in ("files", "opus100"):
        return None
    target = corpus_files(spec, src, tgt, split)[1]
    return target.with_name(target.name + ALTERNATIVES_SUFFIX)


def read_alternatives(path: Path, lines: int) -> list[list[str]]:
    """The alternatives of each of `lines` segments; a file of another length is an error
    naming it (it must be line-aligned with the references)."""
    found = [
        [alt.strip() for alt in line.split(ALTERNATIVES_SEPARATOR) if alt.strip()]
        for line in read_lines(path)
    ]
    if len(found) != lines:
        raise CorpusError(
            f"{path} has {len(found)} lines but its references have {lines}; the alternatives "
            "file must be line-aligned with them (an empty line where a segment has none)"
        )
    return found


def read_pairs(spec: CorpusSpec, src: str, tgt: str, split: str) -> Iterator[RawPair]:
    """Stream the (src, tgt) pairs of one split."""
    if spec.format == "hf":
        yield from read_hf(spec.path.replace("{split}", split), src, tgt, split)
    elif spec.format == "tsv":
        if problems := spec.pair_problems("corpus", src, tgt):
            raise CorpusError(problems[0])
        assert spec.columns is not None  # checked by pair_problems
        pairs = read_tsv(corpus_files(spec, src, tgt, split)[0])
        if tuple(spec.columns) == (src, tgt):
            yield from pairs
        else:
            yield from (RawPair(p.line, p.tgt, p.src) for p in pairs)
    else:
        src_path, tgt_path = corpus_files(spec, src, tgt, split)
        yield from read_file_pair(src_path, tgt_path)


def count_lines(path: Path) -> int:
    """Newline-terminated lines, plus a last line without one."""
    count, last = 0, b"\n"
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _require(path: Path) -> None:
    if not path.is_file():
        raise CorpusError(f"{path}: no such file")


def raw_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(1-based number, bytes) of each line, line end and a leading UTF-8 BOM removed."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            if number == 1:
                line = line.removeprefix(UTF8_BOM)
            yield number, line.rstrip(b"\r\n")


def decode_utf8(raw: bytes | str) -> str | None:
    """The text of one line, or None when it is not valid UTF-8."""
    if isinstance(raw, str):
        return raw
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_line(raw: bytes | str, path: str | os.PathLike[str], line: int) -> str:
    """The text of one line; a `CorpusError` naming the file and line when not UTF-8."""
    text = decode_utf8(raw)
    if text is None:
        raise CorpusError(f"{path}:{line}: not valid UTF-8 (files must be UTF-8 text)")
    return text


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """Every line of a UTF-8 text file, without line ends and BOM; errors name the file."""
    _require(Path(path))
    return [decode_line(raw, path, number) for number, raw in raw_lines(Path(path))]


def read_file_pair(src_path: Path, tgt_path: Path) -> Iterator[RawPair]:
    """Line-aligned files; a line-count mismatch is an error naming both files."""
    _require(src_path)
    _require(tgt_path)
    n_src, n_tgt = count_lines(src_path), count_lines(tgt_path)
    if n_src != n_tgt:
        raise CorpusError(
            f"line counts differ: {src_path} has {n_src} lines, {tgt_path} has {n_tgt}; "
            "parallel files must be line-aligned"
        )
    for (number, src_line), (_, tgt_line) in zip(
        raw_lines(src_path), raw_lines(tgt_path), strict=False
    ):
        yield RawPair(number, src_line, tgt_line)


def read_tsv(path: Path) -> Iterator[RawPair]:
    """Two-column lines in file order (`read_pairs` orders them by `columns`); any
    other column count is an error naming the line."""
    _require(path)
    for number, line in raw_lines(path):
        fields = line.split(b"\t")
        if len(fields) != 2:
            raise CorpusError(
                f"{path}:{number}: expected 2 tab-separated columns, found {len(fields)}"
            )
        yield RawPair(number, fields[0], fields[1])


def read_hf(path: str, src: str, tgt: str, split: str) -> Iterator[RawPair]:
    """A dataset saved with `save_to_disk`, or parquet files, holding OPUS-100 style rows."""
    import datasets

    if Path(path).is_dir():
        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            names = {"dev": ("validation", "dev"), "test": ("test",), "train": ("train",)}[split]
            found = [name for name in names if name in loaded]
            if not found:
                raise CorpusError(f"{path}: no split {split!r}; it has {sorted(loaded)}")
            loaded = loaded[found[0]]
    else:
        try:
            loaded = datasets.load_dataset("parquet", data_files=path, split="train")
        except FileNotFoundError as err:
            raise CorpusError(f"{path}: no parquet file matches ({err})") from None
    yield from _hf_rows(loaded, path, src, tgt)


def _hf_rows(dataset, path: str, src: str, tgt: str) -> Iterator[RawPair]:
    columns = dataset.column_names
    for number, row in enumerate(dataset, start=1):
        pair = row["translation"] if "translation" in columns else row
        if src not in pair or tgt not in pair:
            raise CorpusError(
                f"{path}: row {number} has no {src!r}/{tgt!r} text; columns are {columns}"
                + (f", translation keys {sorted(pair)}" if "translation" in columns else "")
            )
        yield RawPair(number, pair[src], pair[tgt])
