"""Test-set grids: which directions to decode, and where their sources and references are.

A grid file (YAML, `eval/grids/*.yaml`) names a corpus (same formats as data prep) and
the directions: `pairs` lists them one by one (`de-en`), `supervised` pairs each
language with the `pivot` both ways, `zeroshot` takes every ordered pair among its
languages. `corpora: {hu-en: {...}, kha-en: {...}}` gives a pair its own corpus (used
for both directions of the pair); `corpus` is the default for the others. The shipped
`opus100` grid is the paper's: 48 supervised directions (English to and from 24 unseen
languages) and 30 zero-shot ones among ar, de, fr, nl, ru, zh.

A `Direction` is resolved once from the grid and carries everything decoding and
scoring need (corpus, split, language names, sentence cap); its test set is read once.
"""

from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.resources import resolve
from core.typed_config import load_config
from data_prep.contract.languages import language_name, pair_codes, unknown_codes
from data_prep.contract.readers import (
    CorpusError,
    CorpusSpec,
    alternatives_file,
    corpus_files,
    count_lines,
    decode_line,
    read_alternatives,
    read_pairs,
)

GRIDS_PACKAGE = "eval.grids"


@dataclass(frozen=True)
class GridConfig:
    name: str
    corpus: CorpusSpec | None = None
    corpora: dict[str, CorpusSpec] = field(default_factory=dict)
    split: str = "test"
    pivot: str = "en"
    pairs: list[str] = field(default_factory=list)
    supervised: list[str] = field(default_factory=list)
    zeroshot: list[str] = field(default_factory=list)
    max_sentences: int | None = None
    language_names: dict[str, str] = field(default_factory=dict)

    def problems(self, key: str) -> list[str]:
        found = [f"pairs: {p!r} is not src-tgt" for p in self.pairs if pair_codes(p) is None]
        codes = [c for p in self.pairs for c in p.split("-")] + self.supervised + self.zeroshot
        found += [
            f"unknown language code {c!r}; add it to language_names "
            f"(e.g. language_names: {{{c}: Name}})"
            for c in unknown_codes(codes, self.language_names)
        ]
        if not (self.pairs or self.supervised or self.zeroshot):
            found.append("name at least one direction (pairs, supervised or zeroshot)")
        if self.max_sentences is not None and self.max_sentences < 1:
            found.append("max_sentences: must be >= 1 (or null for all)")
        if any(pair_codes(p) is None for p in self.pairs):
            return found
        ordered = ordered_pairs(self)
        unordered = {frozenset(p) for p in ordered}
        for pair in self.corpora:
            if frozenset(pair.split("-")) not in unordered:
                found.append(f"corpora.{pair}: not a pair of the grid's directions")
        one_way = self.corpus is not None and (self.corpus.src_file or self.corpus.tgt_file)
        if one_way and len(ordered) > 1:
            found.append(
                "corpus.src_file/tgt_file name no language, so they cannot serve several "
                "directions; give them under corpora: {SRC-TGT: {...}} (src_file holds SRC)"
            )
        if self.corpus is None:
            uncovered = [f"{s}-{t}" for s, t in ordered if self.corpus_for(s, t) is None]
            if uncovered:
                found.append(f"corpus: required, as corpora does not cover {', '.join(uncovered)}")
        return found

    def corpus_for(self, src: str, tgt: str) -> CorpusSpec | None:
        """The pair's own corpus (either orientation of its key), else the default.
        Under `corpora`, `src_file` holds the key's first language: it is swapped for
        the other direction."""
        if own := self.corpora.get(f"{src}-{tgt}"):
            return own
        if (reverse := self.corpora.get(f"{tgt}-{src}")) is None:
            return self.corpus
        if reverse.src_file and reverse.tgt_file:
            return replace(reverse, src_file=reverse.tgt_file, tgt_file=reverse.src_file)
        return reverse


@dataclass(frozen=True)
class Direction:
    """One direction of a grid, resolved: where its text is and how to prompt for it."""

    src: str
    tgt: str
    group: str
    corpus: CorpusSpec
    split: str
    src_name: str
    tgt_name: str
    max_sentences: int | None = None

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"

    @property
    def files(self) -> tuple[Path, ...]:
        return tuple(corpus_files(self.corpus, self.src, self.tgt, self.split))


@dataclass(frozen=True)
class TestSet:
    """A direction's sources and references, every line kept (a test set is never
    cleaned), cut at the grid's `max_sentences`. `alternatives`: where the corpus gives
    them (`{reference file}.alt`), each segment's further references (empty: none), else
    an empty list."""

    sources: list[str]
    references: list[str]
    alternatives: list[list[str]] = field(default_factory=list)

    def sha256(self) -> dict[str, str]:
        """Hashes of exactly the text decoded and scored."""
        found = {
            "sources": _text_hash(self.sources),
            "references": _text_hash(self.references),
        }
        if self.alternatives:
            found["alternatives"] = _text_hash(["\t".join(alts) for alts in self.alternatives])
        return found

    @property
    def reference_count(self) -> int:
        """The most references a segment has."""
        return 1 + max((len(alts) for alts in self.alternatives), default=0)


def _text_hash(lines: list[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def group_of(src: str, tgt: str, pivot: str = "en") -> str:
    if src == pivot:
        return "en->X"
    return "X->en" if tgt == pivot else "zero-shot"


def load_grid(path: str | Path, overrides: list[str] | None = None) -> GridConfig:
    """A grid file, or a shipped grid by name (`freedict`, `opus100`)."""
    return load_config(GridConfig, grid_path(path), overrides)


def grid_path(path: str | Path) -> Path:
    """A grid file as given, else the shipped grid of that name."""
    return resolve(path, GRIDS_PACKAGE, ".yaml")


def ordered_pairs(grid: GridConfig) -> list[tuple[str, str]]:
    """Every (src, tgt) of the grid, in a stable order, without duplicates."""
    ordered: list[tuple[str, str]] = [tuple(p.split("-")) for p in grid.pairs]  # type: ignore[misc]
    for lang in grid.supervised:
        ordered += [(grid.pivot, lang), (lang, grid.pivot)]
    ordered += list(itertools.permutations(grid.zeroshot, 2))
    return list(dict.fromkeys(ordered))


def directions(grid: GridConfig) -> list[Direction]:
    """Every direction of a validated grid, resolved once."""
    result = []
    for src, tgt in ordered_pairs(grid):
        corpus = grid.corpus_for(src, tgt)
        assert corpus is not None  # GridConfig.problems requires a corpus for every pair
        l1, l2 = (language_name(c, grid.language_names) for c in (src, tgt))
        group = group_of(src, tgt, grid.pivot)
        result.append(Direction(src, tgt, group, corpus, grid.split, l1, l2, grid.max_sentences))
    return result


def missing_files(found: list[Direction]) -> list[str]:
    """Every test file that does not exist, each listed once, before any decoding."""
    paths = dict.fromkeys(str(path) for d in found for path in d.files)
    return [path for path in paths if not Path(path).exists()]


def read_test_set(direction: Direction) -> TestSet:
    """(sources, references) of a direction, from the corpus reader for its direction."""
    sources, references = [], []
    pairs = read_pairs(direction.corpus, direction.src, direction.tgt, direction.split)
    for pair in pairs:
        if direction.max_sentences is not None and len(sources) >= direction.max_sentences:
            break
        sources.append(_text(pair.src, direction, pair.line))
        references.append(_text(pair.tgt, direction, pair.line))
    return TestSet(sources, references, read_test_alternatives(direction, len(references)))


def read_test_alternatives(direction: Direction, segments: int) -> list[list[str]]:
    """The first `segments` segments' alternative references, when the corpus has them."""
    path = alternatives_file(direction.corpus, direction.src, direction.tgt, direction.split)
    if path is None or not path.is_file():
        return []
    target = direction.files[1]
    return read_alternatives(path, count_lines(target))[:segments]


def read_test_sets(found: list[Direction]) -> dict[str, TestSet]:
    """Every direction's test set, read once before decoding; every unreadable one is
    reported at once (one CorpusError listing them)."""
    sets, problems = {}, []
    for direction in found:
        try:
            sets[direction.name] = read_test_set(direction)
        except CorpusError as err:
            problems.append(f"{direction.name}: {err}")
    if problems:
        raise CorpusError("unreadable test sets:\n" + "\n".join(f"  - {p}" for p in problems))
    return sets


def _text(value: bytes | str, direction: Direction, line: int) -> str:
    return decode_line(value, ", ".join(map(str, direction.files)), line).strip()
