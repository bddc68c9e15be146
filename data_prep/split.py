"""`python -m data_prep split`: one parallel corpus -> train/dev/test in the `files` layout.

    OUT/{train,dev,test}.{src}   OUT/{train,dev,test}.{tgt}   OUT/split.json

so a recipe or grid reads it with `corpus: {format: files, path: OUT/}`. Lines are
kept as they are (cleaning happens in the build). Pairs are grouped so that a sentence
that occurs more than once, on either side, lands in one split only: no test source
(in either direction) is also a training sentence. Groups are shuffled with the seed and
filled into test, then dev, the rest going to train; a group too big for what is left
of test or dev goes to train. The folder is written atomically.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.fileio import sha256_file, write_json, write_lines
from data_prep.contract.readers import CorpusSpec, corpus_files, decode_line, read_pairs
from data_prep.output import check_output_dir, output_dir

MARKER = "split.json"
SPLIT_NAMES = ("train", "dev", "test")


class SplitError(ValueError):
    pass


def parse_size(text: str, name: str) -> float | int:
    """`500` -> 500 pairs; `0.05` -> 5% of the pairs."""
    try:
        value = float(text)
    except ValueError:
        raise SplitError(f"--{name}: {text!r} is not a number of pairs or a fraction") from None
    if value.is_integer() and value >= 1:
        return int(value)
    if 0 <= value < 1:
        return value
    raise SplitError(f"--{name}: {text!r} must be a whole count >= 1 or a fraction in [0, 1)")


@dataclass(frozen=True)
class SplitSpec:
    """One corpus to split: `corpus` read for `src`->`tgt` (file pair or tsv with columns)."""

    corpus: CorpusSpec
    src: str
    tgt: str
    dev: float | int
    test: float | int
    seed: int = 1


def _count(size: float | int, total: int) -> int:
    return size if isinstance(size, int) else round(size * total)


def _read(spec: SplitSpec) -> list[tuple[str, str]]:
    files = corpus_files(spec.corpus, spec.src, spec.tgt, "train")
    where = ", ".join(map(str, files))
    return [
        (decode_line(p.src, where, p.line), decode_line(p.tgt, where, p.line))
        for p in read_pairs(spec.corpus, spec.src, spec.tgt, "train")
    ]


def groups(pairs: list[tuple[str, str]]) -> list[list[int]]:
    """Line indices grouped so that pairs sharing a source or a target sentence
    (compared without surrounding spaces) are together; groups in first-line order."""
    parent = list(range(len(pairs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: dict[tuple[int, str], int] = {}
    for index, pair in enumerate(pairs):
        for side, text in enumerate(pair):
            other = first.setdefault((side, text.strip()), index)
            parent[root(index)] = root(other)
    members: dict[int, list[int]] = {}
    for index in range(len(pairs)):
        members.setdefault(root(index), []).append(index)
    return list(members.values())


def assign(found: list[list[int]], targets: dict[str, int], seed: int) -> dict[str, list[int]]:
    """Line indices of each split (in corpus order); test and dev filled first."""
    order = list(found)
    random.Random(seed).shuffle(order)
    chosen: dict[str, list[int]] = {name: [] for name in SPLIT_NAMES}
    for group in order:
        name = next(
            (n for n in ("test", "dev") if len(chosen[n]) + len(group) <= targets[n]), "train"
        )
        chosen[name].extend(group)
    return {name: sorted(lines) for name, lines in chosen.items()}


def split_corpus(spec: SplitSpec, out: str | Path, overwrite: bool = False) -> dict[str, Any]:
    """Write the three splits to `out`; returns the summary saved as `split.json`."""
    check_output_dir(out, overwrite=overwrite, marker=MARKER)
    pairs = _read(spec)
    targets = {"dev": _count(spec.dev, len(pairs)), "test": _count(spec.test, len(pairs))}
    if targets["dev"] + targets["test"] >= len(pairs):
        raise SplitError(
            f"dev {targets['dev']} + test {targets['test']} pairs leave nothing to train on: "
            f"the corpus has {len(pairs)} pairs"
        )
    found = groups(pairs)
    chosen = assign(found, targets, spec.seed)
    summary = {
        "pair": f"{spec.src}-{spec.tgt}",
        "seed": spec.seed,
        "inputs": {
            str(p): sha256_file(p) for p in corpus_files(spec.corpus, spec.src, spec.tgt, "train")
        },
        "pairs": len(pairs),
        "groups": len(found),
        "requested": targets,
        "sizes": {name: len(lines) for name, lines in chosen.items()},
    }
    with output_dir(out, overwrite=overwrite, marker=MARKER) as work:
        for name, lines in chosen.items():
            for side, lang in enumerate((spec.src, spec.tgt)):
                write_lines(work / f"{name}.{lang}", _side(pairs, lines, side))
        write_json(work / MARKER, summary)
    return summary


def _side(pairs: list[tuple[str, str]], lines: list[int], side: int) -> Iterator[str]:
    return (pairs[index][side] for index in lines)
