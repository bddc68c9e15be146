"""Alignment precision against a bilingual lexicon (weak gold).

Precision here is: among links whose source word is a lexicon headword, the share
whose target word is one of its translations; both sides lower-cased. A link whose
source word the lexicon lacks says nothing either way and is not counted. On the
FreeDict de-en train split the figures are in bench/RESULTS.md ("Alignment quality").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from data_prep.align import Links
from data_prep.contract.readers import CorpusError
from data_prep.wordtok import tokens

Lexicon = dict[str, set[str]]


def load_lexicon(path: str | Path) -> Lexicon:
    """`headword<TAB>translation translation ...` lines, lower-cased."""
    lexicon: Lexicon = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            head, sep, rest = line.rstrip("\n").partition("\t")
            if not sep:
                raise CorpusError(f"{path}:{number}: expected 'word<TAB>translations'")
            lexicon.setdefault(head.lower(), set()).update(w.lower() for w in rest.split())
    return lexicon


@dataclass(frozen=True)
class Precision:
    confirmed: int
    judged: int
    links: int

    @property
    def value(self) -> float:
        return self.confirmed / self.judged if self.judged else 0.0


def lexicon_precision(
    src: Sequence[str], tgt: Sequence[str], links: Iterable[Links], lexicon: Lexicon
) -> Precision:
    confirmed = judged = total = 0
    for s, t, line_links in zip(src, tgt, links, strict=True):
        s_tok, t_tok = tokens(s, lowercase=True), tokens(t, lowercase=True)
        for i, j in line_links:
            total += 1
            translations = lexicon.get(s_tok[i])
            if translations is None:
                continue
            judged += 1
            confirmed += t_tok[j] in translations
    return Precision(confirmed, judged, total)
