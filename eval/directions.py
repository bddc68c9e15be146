"""Test-set grids: which directions to decode, and where their sources and references are.

A grid file (YAML, `eval/grids/*.yaml`) names a corpus (same formats as data prep) and
the directions: `pairs` lists them one by one (`de-en`), `supervised` pairs each
language with the `pivot` both ways, `zeroshot` takes every ordered pair among its
languages. The shipped `opus100` grid is the paper's: 48 supervised directions (English
to and from 24 unseen languages) and 30 zero-shot ones among ar, de, fr, nl, ru, zh.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from core.resources import resolve
from core.typed_config import load_config
from data_prep.contract.languages import OPUS100_LANGUAGES, language_name
from data_prep.contract.readers import CorpusSpec, corpus_files, decode_line, read_pairs

GRIDS_PACKAGE = "eval.grids"


@dataclass(frozen=True)
class GridConfig:
    name: str
    corpus: CorpusSpec
    split: str = "test"
    pivot: str = "en"
    pairs: list[str] = field(default_factory=list)
    supervised: list[str] = field(default_factory=list)
    zeroshot: list[str] = field(default_factory=list)
    max_sentences: int | None = None
    language_names: dict[str, str] = field(default_factory=dict)

    def problems(self, key: str) -> list[str]:
        found = []
        known = set(OPUS100_LANGUAGES) | set(self.language_names)
        codes = [c for p in self.pairs for c in p.split("-")] + self.supervised + self.zeroshot
        found += [f"unknown language code {c!r}" for c in sorted(set(codes) - known)]
        found += [f"pairs: {p!r} is not src-tgt" for p in self.pairs if len(p.split("-")) != 2]
        if not (self.pairs or self.supervised or self.zeroshot):
            found.append("name at least one direction (pairs, supervised or zeroshot)")
        return found


@dataclass(frozen=True)
class Direction:
    src: str
    tgt: str
    group: str
    files: tuple[Path, ...]

    @property
    def name(self) -> str:
        return f"{self.src}-{self.tgt}"


def group_of(src: str, tgt: str, pivot: str = "en") -> str:
    if src == pivot:
        return "en->X"
    return "X->en" if tgt == pivot else "zero-shot"


def load_grid(path: str | Path, overrides: list[str] | None = None) -> GridConfig:
    """A grid file, or a shipped grid by name (`freedict`, `opus100`)."""
    return load_config(GridConfig, resolve(path, GRIDS_PACKAGE, ".yaml"), overrides)


def directions(grid: GridConfig) -> list[Direction]:
    """Every direction of the grid, in a stable order, without duplicates."""
    ordered: list[tuple[str, str]] = [tuple(p.split("-")) for p in grid.pairs]  # type: ignore[misc]
    for lang in grid.supervised:
        ordered += [(grid.pivot, lang), (lang, grid.pivot)]
    ordered += list(itertools.permutations(grid.zeroshot, 2))
    seen, result = set(), []
    for src, tgt in ordered:
        if (src, tgt) not in seen:
            seen.add((src, tgt))
            files = tuple(corpus_files(grid.corpus, src, tgt, grid.split))
            result.append(Direction(src, tgt, group_of(src, tgt, grid.pivot), files))
    return result


def missing_files(found: list[Direction]) -> list[str]:
    """All test files that do not exist, listed at once before any decoding."""
    return [str(path) for d in found for path in d.files if not path.exists()]


def read_test_set(grid: GridConfig, direction: Direction) -> tuple[list[str], list[str]]:
    """(sources, references) of a direction, every line kept (a test set is never cleaned)."""
    sources, references = [], []
    for pair in read_pairs(grid.corpus, direction.src, direction.tgt, grid.split):
        src, ref = (_text(x, direction, pair.line) for x in (pair.src, pair.tgt))
        sources.append(src)
        references.append(ref)
        if grid.max_sentences is not None and len(sources) >= grid.max_sentences:
            break
    return sources, references


def _text(value: bytes | str, direction: Direction, line: int) -> str:
    return decode_line(value, ", ".join(map(str, direction.files)), line).strip()


def names(grid: GridConfig, direction: Direction) -> tuple[str, str]:
    return (
        language_name(direction.src, grid.language_names),
        language_name(direction.tgt, grid.language_names),
    )
