"""The word tokenization that alignments index into.

Pharaoh links `i-j` count words of this tokenization, so it is versioned: a change
to the pattern must bump WORDTOK_VERSION, which is part of every alignment cache key
and manifest. A word is a run of letters, digits, marks or underscores, optionally
joined by inner hyphens or apostrophes ("don't", "E-Mail"); every other non-space
character is a token of its own. Scripts written without spaces (zh, ja, th, km, my)
are tokenized per run of characters, which is coarse; pre-segment such text if the
alignments matter.
"""

from __future__ import annotations

import unicodedata
from typing import NamedTuple

import regex

WORDTOK_VERSION = "wordtok-1"

# \p{M}: combining marks belong to their word (Devanagari vowel signs, Hebrew points).
_TOKEN = regex.compile(r"[\w\p{M}]+(?:[-'’][\w\p{M}]+)*|[^\w\p{M}\s]")


class Word(NamedTuple):
    """One token and its character span in the original line."""

    text: str
    start: int
    end: int


def words(line: str) -> list[Word]:
    """Tokens of `line` with their character offsets."""
    return [Word(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(line)]


def tokens(line: str, lowercase: bool = False) -> list[str]:
    """Token strings of `line` (lower-cased when asked, as the aligner sees them)."""
    found = _TOKEN.findall(line)
    return [t.lower() for t in found] if lowercase else found


def is_content(token: str) -> bool:
    """True for a word of letters (with marks and inner hyphens or apostrophes).

    Tokens holding digits, punctuation or symbols ("1990", ".", "x2", "1990's") never
    make AlignInstruct pairs: linking "." to "." or "1990" to "1990" teaches nothing
    about the languages.
    """
    has_letter = False
    for char in token:
        category = unicodedata.category(char)
        if category[0] == "L":
            has_letter = True
        elif category[0] != "M" and char not in "-'’":
            return False
    return has_letter
