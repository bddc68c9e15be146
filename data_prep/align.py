"""Statistical word alignment: eflomal (default) or fast_align, symmetrised.

Both aligners are run over the corpus in both directions on the lower-cased
`wordtok` tokens (one line of space-joined tokens per sentence, in a file); the two
link sets are then combined per line: intersection and union as set operations,
grow-diag-final-and with `thot`'s heuristic. Results are cached by content hash: the
key covers the tokenized text, the aligner and its settings, so a rerun with the same
inputs reads the cache and is free. eflomal samples with an unseeded RNG, so the cache
is also what makes reruns byte-equal. eflomal runs in a process of its own
(`python -m data_prep.align`), so its memory is not the build's.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from core.fileio import write_lines
from data_prep.contract.readers import CorpusError
from data_prep.wordtok import WORDTOK_VERSION, segmentation, tokens

log = logging.getLogger(__name__)

Links = list[tuple[int, int]]
Langs = tuple[str | None, str | None]
Aligner = Literal["eflomal", "fast_align"]
Symmetrization = Literal["grow-diag-final-and", "intersection", "union"]
ALIGNERS: tuple[str, ...] = ("eflomal", "fast_align")
SYMMETRIZATIONS: tuple[str, ...] = ("grow-diag-final-and", "intersection", "union")
# Instruction types whose true statements come from links, and the link set each reads
# by default. AlignInstruct's negatives always read the union (never configurable: a
# False assertion must state a pair that no symmetrisation links).
LINKED_TYPES: tuple[str, ...] = ("align", "hint", "revise")
NEGATIVE_LINKS = "union"


def _default_links() -> dict[str, Symmetrization]:
    return dict.fromkeys(LINKED_TYPES, "intersection")  # type: ignore[return-value]


@dataclass(frozen=True)
class AlignConfig:
    """How to align, and which symmetrisation each instruction type reads.

    `links` is the one place that says it: `{align, hint, revise}` -> the link set
    whose 1-to-1 content-word links a sample of that type may state as true.
    `fast_align_iterations` only applies to fast_align. Neither `links` nor the
    symmetrisation is part of the alignment cache key (they do not change the
    aligner's directional output).
    """

    aligner: Aligner = "eflomal"
    """The word aligner: eflomal, or fast_align (sil-thot's implementation)."""
    lowercase: bool = True
    """Align lowercased words."""
    fast_align_iterations: int = 5
    """EM iterations of fast_align."""
    links: dict[str, Symmetrization] = field(default_factory=_default_links)
    """Per instruction type (align, hint, revise): the symmetrised link set it reads."""

    def problems(self, key: str = "align") -> list[str]:
        """Checks beyond the field types (the Literal fields are checked on load)."""
        found = []
        if self.fast_align_iterations < 1:
            found.append(f"{key}.fast_align_iterations: must be >= 1")
        for kind in self.links:
            if kind not in LINKED_TYPES:
                found.append(
                    f"{key}.links.{kind}: not an instruction type that reads links "
                    f"(one of {list(LINKED_TYPES)})"
                )
        return found

    def link_set(self, kind: str) -> str:
        """The link set whose links `kind` states as true."""
        return self.links.get(kind, "intersection")


def parse_pharaoh(line: str) -> Links:
    """`"0-0 1-2"` -> [(0, 0), (1, 2)]."""
    return [(int(i), int(j)) for i, j in (item.split("-") for item in line.split())]


def format_pharaoh(links: Iterable[tuple[int, int]]) -> str:
    """[(0, 0), (1, 2)] -> `"0-0 1-2"`, sorted."""
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def read_pharaoh(path: str | os.PathLike[str]) -> list[Links]:
    """All lines of a Pharaoh file."""
    with open(path, encoding="utf-8") as handle:
        return [parse_pharaoh(line) for line in handle]


def symmetrize(fwd: Links, rev: Links, n_src: int, n_tgt: int, method: str) -> Links:
    """Combine forward and reverse links (both as (src, tgt)), sorted by (src, tgt).

    Intersection and union are set operations; grow-diag-final-and is thot's."""
    if n_src == 0 or n_tgt == 0:
        return []
    if method == "intersection":
        return sorted(set(fwd).intersection(rev))
    if method == "union":
        return sorted(set(fwd).union(rev))
    from thot.common import WordAlignmentMatrix

    direct, inverse = WordAlignmentMatrix(n_src, n_tgt), WordAlignmentMatrix(n_src, n_tgt)
    for i, j in fwd:
        direct.set(i, j)
    for i, j in rev:
        inverse.set(i, j)
    # thot's operations update the matrix in place (and return it).
    if method == "grow-diag-final-and":
        direct.grow_diag_final_and(inverse)
    else:
        raise ValueError(f"unknown symmetrization {method!r}; expected one of {SYMMETRIZATIONS}")
    rows, cols = np.nonzero(direct.to_numpy())
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


@dataclass(frozen=True)
class Alignment:
    """Cached directional links of one corpus (Pharaoh, one line per sentence pair)."""

    fwd_path: Path
    rev_path: Path
    key: str

    def directional(self) -> tuple[list[Links], list[Links]]:
        return read_pharaoh(self.fwd_path), read_pharaoh(self.rev_path)

    def lines(self) -> Iterator[tuple[Links, Links]]:
        """(forward, reverse) links per line, streamed."""
        with (
            open(self.fwd_path, encoding="utf-8") as fwd,
            open(self.rev_path, encoding="utf-8") as rev,
        ):
            for f, r in zip(fwd, rev, strict=True):
                yield parse_pharaoh(f), parse_pharaoh(r)

    def symmetrized(
        self, src: Sequence[str], tgt: Sequence[str], method: str, langs: Langs = (None, None)
    ) -> list[Links]:
        """Symmetrised links per line; `src`/`tgt` are the raw lines (for lengths)."""
        a, b = langs
        return [
            symmetrize(f, r, len(tokens(s, lang=a)), len(tokens(t, lang=b)), method)
            for (f, r), s, t in zip(self.lines(), src, tgt, strict=True)
        ]


def aligner_line(words: Iterable[str], lowercase: bool) -> str:
    """One line of the aligner's input: the words, space-joined (lower-cased if asked)."""
    line = " ".join(words)
    return line.lower() if lowercase else line


def _settings_json(config: AlignConfig, langs: Langs = (None, None)) -> bytes:
    # Only what changes the directional links: not `links` (nor the old `symmetrization`),
    # so that a recipe choosing other link sets reuses the cache.
    settings = {
        "aligner": config.aligner,
        "lowercase": config.lowercase,
        "fast_align_iterations": config.fast_align_iterations,
    }
    identity: list[object] = [WORDTOK_VERSION, settings]
    segmenters = [segmentation(lang) for lang in langs]
    if any(name != WORDTOK_VERSION for name in segmenters):
        identity.append(segmenters)  # spaced scripts keep the keys (and caches) they had
    return json.dumps(identity, sort_keys=True).encode()


def cache_key(
    src_tok: Sequence[str], tgt_tok: Sequence[str], config: AlignConfig, langs: Langs = (None, None)
) -> str:
    """Content hash of the aligner's exact input and settings."""
    digest = hashlib.sha256(_settings_json(config, langs))
    for side in (src_tok, tgt_tok):
        digest.update(b"\x00side\x00")
        for line in side:
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
    return digest.hexdigest()[:24]


def file_cache_key(
    src_file: Path, tgt_file: Path, config: AlignConfig, langs: Langs = (None, None)
) -> str:
    """`cache_key` of two aligner input files (one newline-ended line per sentence)."""
    digest = hashlib.sha256(_settings_json(config, langs))
    for path in (src_file, tgt_file):
        digest.update(b"\x00side\x00")
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:24]


def align(
    src: Sequence[str],
    tgt: Sequence[str],
    config: AlignConfig,
    cache_dir: str | os.PathLike[str],
    langs: Langs = (None, None),
) -> Alignment:
    """Align raw lines `src`/`tgt` (or read the cache) and return the cached links.

    `langs`: the (source, target) language codes, for the script-aware word segmentation."""
    if len(src) != len(tgt):
        raise CorpusError(f"cannot align {len(src)} source lines with {len(tgt)} target lines")
    a, b = langs
    with tempfile.TemporaryDirectory(prefix="align-input-") as scratch:
        src_file, tgt_file = Path(scratch) / "src", Path(scratch) / "tgt"
        write_lines(
            src_file, (aligner_line(tokens(line, lang=a), config.lowercase) for line in src)
        )
        write_lines(
            tgt_file, (aligner_line(tokens(line, lang=b), config.lowercase) for line in tgt)
        )
        return align_files(src_file, tgt_file, config, cache_dir, langs)


def align_files(
    src_file: Path,
    tgt_file: Path,
    config: AlignConfig,
    cache_dir: str | os.PathLike[str],
    langs: Langs = (None, None),
) -> Alignment:
    """Align two aligner input files (`aligner_line` per sentence), or read the cache.

    `langs` names the segmentation that made the files: it is part of the cache key."""
    key = file_cache_key(src_file, tgt_file, config, langs)
    folder = Path(cache_dir) / f"{config.aligner}-{key}"
    result = Alignment(folder / "fwd.links", folder / "rev.links", key)
    if result.fwd_path.exists() and result.rev_path.exists():
        log.info("alignment cache hit: %s", folder)
        return result
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="links-", dir=folder) as scratch:
        fwd_raw, rev_raw = Path(scratch) / "fwd", Path(scratch) / "rev"
        if config.aligner == "eflomal":
            run_eflomal(src_file, tgt_file, fwd_raw, rev_raw)
        else:
            _run_fast_align(src_file, tgt_file, config, fwd_raw, rev_raw)
        # Normalised (sorted) links; the reverse file is written last and checked
        # first: both exist only when complete.
        for raw, final in ((fwd_raw, result.fwd_path), (rev_raw, result.rev_path)):
            with open(raw, encoding="utf-8") as lines:
                count = write_lines(final, (format_pharaoh(parse_pharaoh(x)) for x in lines))
    log.info(
        "aligned %d pairs with %s in %.1fs -> %s",
        count,
        config.aligner,
        time.perf_counter() - started,
        folder,
    )
    return result


def run_eflomal(src_file: Path, tgt_file: Path, fwd_file: Path, rev_file: Path) -> None:
    """eflomal over two input files, in a process of its own (its memory and time are
    the aligner's, apart from the build's); a failure names the inputs."""
    command = [sys.executable, "-m", "data_prep.align", "eflomal"]
    command += [str(src_file), str(tgt_file), str(fwd_file), str(rev_file)]
    # The package root goes first on the path: the build may run from any folder.
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    env = dict(os.environ, PYTHONPATH=path)
    run = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if run.returncode != 0:
        raise RuntimeError(
            f"eflomal failed on {src_file} / {tgt_file} (exit {run.returncode}):\n"
            + run.stderr[-2000:]
        )


def _eflomal_main(src_file: str, tgt_file: str, fwd_file: str, rev_file: str) -> None:
    import eflomal

    with open(src_file, encoding="utf-8") as src, open(tgt_file, encoding="utf-8") as tgt:
        eflomal.Aligner().align(
            src, tgt, links_filename_fwd=fwd_file, links_filename_rev=rev_file, quiet=True
        )


def _run_fast_align(
    src_file: Path, tgt_file: Path, config: AlignConfig, fwd_file: Path, rev_file: Path
) -> None:
    with open(src_file, encoding="utf-8") as src, open(tgt_file, encoding="utf-8") as tgt:
        src_words, tgt_words = [x.split() for x in src], [x.split() for x in tgt]
    # The direct model predicts target words from source words: each target word gets
    # one source word. The inverse model does the opposite; transpose its links back.
    direct = _train_fast_align(src_words, tgt_words, config.fast_align_iterations)
    inverse = _train_fast_align(tgt_words, src_words, config.fast_align_iterations)
    n = range(len(src_words))
    write_lines(fwd_file, (format_pharaoh(_links(direct, k)) for k in n))
    write_lines(rev_file, (format_pharaoh((i, j) for j, i in _links(inverse, k)) for k in n))


def _train_fast_align(src: list[list[str]], tgt: list[list[str]], iterations: int):
    from thot.alignment import FastAlignModel

    model = FastAlignModel()
    model.emit_training_alignments = True
    for s, t in zip(src, tgt, strict=True):
        model.add_sentence_pair(s, t)
    model.start_training()
    for _ in range(iterations):
        model.train()
    model.end_training()
    return model


def _links(model, n: int) -> Links:
    _, matrix = model.get_training_alignment(n)
    rows, cols = np.nonzero(matrix.to_numpy())
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


def main(argv: list[str] | None = None) -> None:
    """`python -m data_prep.align eflomal SRC TGT FWD REV`: the aligner process."""
    parser = argparse.ArgumentParser(prog="python -m data_prep.align")
    parser.add_argument("aligner", choices=["eflomal"])
    parser.add_argument("files", nargs=4, metavar="FILE", help="src tgt fwd-out rev-out")
    args = parser.parse_args(argv)
    _eflomal_main(*args.files)


if __name__ == "__main__":
    main()
