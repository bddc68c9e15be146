"""Statistical word alignment: eflomal (default) or fast_align, symmetrised.

Both aligners are run over the corpus in both directions on the lower-cased
`wordtok` tokens; the two link sets are then combined with the symmetrisation
heuristics of `thot` (grow-diag-final-and, intersection or union). Results are
cached by content hash: the key covers the tokenized text, the aligner and its
settings, so a rerun with the same inputs reads the cache and is free. eflomal
samples with an unseeded RNG, so the cache is also what makes reruns byte-equal.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
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


@dataclass(frozen=True)
class AlignConfig:
    """How to align. `fast_align_iterations` only applies to fast_align."""

    aligner: Aligner = "eflomal"
    symmetrization: Symmetrization = "grow-diag-final-and"
    lowercase: bool = True
    fast_align_iterations: int = 5

    def problems(self, key: str = "align") -> list[str]:
        """Checks beyond the field types (the Literal fields are checked on load)."""
        if self.fast_align_iterations < 1:
            return [f"{key}.fast_align_iterations: must be >= 1"]
        return []


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
    """Combine forward and reverse links (both as (src, tgt)) with thot's heuristics."""
    from thot.common import WordAlignmentMatrix

    if n_src == 0 or n_tgt == 0:
        return []
    direct, inverse = WordAlignmentMatrix(n_src, n_tgt), WordAlignmentMatrix(n_src, n_tgt)
    for i, j in fwd:
        direct.set(i, j)
    for i, j in rev:
        inverse.set(i, j)
    # thot's operations update the matrix in place (and return it).
    if method == "intersection":
        direct.intersect(inverse)
    elif method == "union":
        direct.union(inverse)
    elif method == "grow-diag-final-and":
        direct.grow_diag_final_and(inverse)
    else:
        raise ValueError(f"unknown symmetrization {method!r}; expected one of {SYMMETRIZATIONS}")
    rows, cols = np.nonzero(direct.to_numpy())
    return list(zip(rows.tolist(), cols.tolist(), strict=True))


@dataclass(frozen=True)
class Alignment:
    """Cached directional links of one corpus, and the symmetrised view asked for."""

    fwd_path: Path
    rev_path: Path
    key: str

    def directional(self) -> tuple[list[Links], list[Links]]:
        return read_pharaoh(self.fwd_path), read_pharaoh(self.rev_path)

    def symmetrized(
        self, src: Sequence[str], tgt: Sequence[str], method: str, langs: Langs = (None, None)
    ) -> list[Links]:
        """Symmetrised links per line; `src`/`tgt` are the raw lines (for lengths)."""
        fwd, rev = self.directional()
        a, b = langs
        return [
            symmetrize(f, r, len(tokens(s, lang=a)), len(tokens(t, lang=b)), method)
            for f, r, s, t in zip(fwd, rev, src, tgt, strict=True)
        ]


def cache_key(
    src_tok: Sequence[str], tgt_tok: Sequence[str], config: AlignConfig, langs: Langs = (None, None)
) -> str:
    """Content hash of the aligner's exact input and settings."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in asdict(config).items() if k != "symmetrization"}
    identity: list[object] = [WORDTOK_VERSION, settings]
    segmenters = [segmentation(lang) for lang in langs]
    if any(name != WORDTOK_VERSION for name in segmenters):
        identity.append(segmenters)  # spaced scripts keep the keys (and caches) they had
    digest.update(json.dumps(identity, sort_keys=True).encode())
    for side in (src_tok, tgt_tok):
        digest.update(b"\x00side\x00")
        for line in side:
            digest.update(line.encode("utf-8"))
            digest.update(b"\n")
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
    src_tok = [" ".join(tokens(line, config.lowercase, langs[0])) for line in src]
    tgt_tok = [" ".join(tokens(line, config.lowercase, langs[1])) for line in tgt]
    key = cache_key(src_tok, tgt_tok, config, langs)
    folder = Path(cache_dir) / f"{config.aligner}-{key}"
    result = Alignment(folder / "fwd.links", folder / "rev.links", key)
    if result.fwd_path.exists() and result.rev_path.exists():
        log.info("alignment cache hit: %s", folder)
        return result
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    runner = _run_eflomal if config.aligner == "eflomal" else _run_fast_align
    fwd, rev = runner(src_tok, tgt_tok, config)
    # The reverse file is written last and checked first: both exist only when complete.
    write_lines(result.fwd_path, (format_pharaoh(links) for links in fwd))
    write_lines(result.rev_path, (format_pharaoh(links) for links in rev))
    log.info(
        "aligned %d pairs with %s in %.1fs -> %s",
        len(src),
        config.aligner,
        time.perf_counter() - started,
        folder,
    )
    return result


def _run_eflomal(
    src_tok: Sequence[str], tgt_tok: Sequence[str], config: AlignConfig
) -> tuple[list[Links], list[Links]]:
    import eflomal

    with tempfile.TemporaryDirectory(prefix="eflomal-") as scratch:
        fwd_file, rev_file = Path(scratch) / "fwd", Path(scratch) / "rev"
        eflomal.Aligner().align(
            list(src_tok),
            list(tgt_tok),
            links_filename_fwd=str(fwd_file),
            links_filename_rev=str(rev_file),
            quiet=True,
        )
        return read_pharaoh(fwd_file), read_pharaoh(rev_file)


def _run_fast_align(
    src_tok: Sequence[str], tgt_tok: Sequence[str], config: AlignConfig
) -> tuple[list[Links], list[Links]]:
    src_words = [line.split() for line in src_tok]
    tgt_words = [line.split() for line in tgt_tok]
    # The direct model predicts target words from source words: each target word gets
    # one source word. The inverse model does the opposite; transpose its links back.
    direct = _train_fast_align(src_words, tgt_words, config.fast_align_iterations)
    inverse = _train_fast_align(tgt_words, src_words, config.fast_align_iterations)
    fwd = [_links(direct, n) for n in range(len(src_words))]
    rev = [[(i, j) for j, i in _links(inverse, n)] for n in range(len(src_words))]
    return fwd, rev


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
