"""The word tokenization that alignments index into, per script.

Pharaoh links `i-j` count words of this tokenization, so it is versioned: every
language's segmentation has an identity (`segmentation(lang)`), part of every
alignment cache key and manifest. `words(line, lang)` is the one entry point.

Scripts written with spaces between words (Latin, Cyrillic, Arabic, Devanagari, ...):
a word is a run of letters, digits, marks or underscores, optionally joined by inner
hyphens or apostrophes ("don't", "E-Mail"); every other non-space character is a
token of its own (WORDTOK_VERSION; unchanged, so these builds stay byte-identical).

Scripts written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese; the
languages in UNSEGMENTED): ICU's word break rules (UAX #29 plus ICU's dictionaries
for these scripts), through the `icu4py` binding, which ships ICU in its wheel. Where
icu4py is not installed (it needs Python 3.11+), Chinese and Japanese fall back to one
token per Han or kana character; Thai, Lao, Khmer and Burmese have no such fallback
(a character is not a unit of meaning there) and raise an error naming the package.
Tibetan script (dz) keeps the default: its syllable mark (tsheg) is punctuation, so
words are syllables, as ICU (which has no Tibetan dictionary) would also give.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import NamedTuple

import regex

WORDTOK_VERSION = "wordtok-1"
CHARS_VERSION = "chars-1"

# \p{M}: combining marks belong to their word (Devanagari vowel signs, Hebrew points).
_TOKEN = regex.compile(r"[\w\p{M}]+(?:[-'’][\w\p{M}]+)*|[^\w\p{M}\s]")
# The character fallback for Chinese and Japanese: one token per Han or kana character
# (Unicode Script_Extensions, so the prolonged sound mark ー counts as kana).
_CJK_CHAR = regex.compile(r"[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}]")
_HAS_WORD_CHAR = regex.compile(r"[\w\p{M}]")
# Spaces and format characters (zero-width space U+200B, used between words in Khmer,
# Burmese and Thai text; ZWNJ/ZWJ) are never tokens of their own.
_SEPARATOR = regex.compile(r"^[\s\p{Cf}]*$")
_SEGMENT_WORD = regex.compile(r"[^\s\p{Cf}](?:[^\s]*[^\s\p{Cf}])?")

# Languages whose script separates no words with spaces (ISO 639-1 -> ICU locale).
UNSEGMENTED: dict[str, str] = {
    "zh": "zh", "ja": "ja", "th": "th", "lo": "lo", "km": "km", "my": "my",
}  # fmt: skip
# Where a character is a sensible fallback unit (Han characters are morphemes).
CHAR_FALLBACK: frozenset[str] = frozenset({"zh", "ja"})


class Word(NamedTuple):
    """One token and its character span in the original line."""

    text: str
    start: int
    end: int


class SegmenterMissing(RuntimeError):
    """A language needs a word segmenter that is not installed."""


@functools.cache
def _icu() -> tuple[type, str] | None:
    """(icu4py's WordBreaker, its identity) or None when icu4py is not installed."""
    try:
        import icu4py
        from icu4py.breakers import WordBreaker
    except ImportError:
        return None
    from importlib.metadata import version

    return WordBreaker, f"icu4py-{version('icu4py')}/icu-{icu4py.icu_version}"


def segmentation(lang: str | None) -> str:
    """The identity (segmenter name and version) of the tokenization of `lang`."""
    if lang not in UNSEGMENTED:
        return WORDTOK_VERSION
    icu = _icu()
    if icu is not None:
        return f"{WORDTOK_VERSION}+{icu[1]}"
    if lang in CHAR_FALLBACK:
        return f"{WORDTOK_VERSION}+{CHARS_VERSION}"
    raise SegmenterMissing(
        f"language {lang!r} is written without spaces and needs ICU word segmentation: "
        "pip install icu4py (Python 3.11+)"
    )


def words(line: str, lang: str | None = None) -> list[Word]:
    """Tokens of `line` (in language `lang`) with their character offsets."""
    if lang in UNSEGMENTED:
        if _icu() is not None:
            return _icu_words(line, UNSEGMENTED[lang])
        segmentation(lang)  # raises unless characters are a fallback for `lang`
        return _char_words(line)
    return [Word(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(line)]


def tokens(line: str, lowercase: bool = False, lang: str | None = None) -> list[str]:
    """Token strings of `line` (lower-cased when asked, as the aligner sees them)."""
    found = [w.text for w in words(line, lang)] if lang in UNSEGMENTED else _TOKEN.findall(line)
    return [t.lower() for t in found] if lowercase else found


def _icu_words(line: str, locale: str) -> list[Word]:
    """ICU word-break segments: a segment holding a letter or digit is one word, spaces
    and format characters are dropped, and each other character is a token of its own."""
    breaker, _ = _icu()  # type: ignore[misc]
    to_char = _utf16_to_char(line)
    found = []
    for start16, end16 in breaker(line, locale).segments():
        start, end = to_char(start16), to_char(end16)
        segment = line[start:end]
        if _SEPARATOR.match(segment):
            continue
        if _HAS_WORD_CHAR.search(segment):
            # Trim spaces or format characters ICU kept at an edge of the segment.
            # (never a space inside a word: the aligners split their input on spaces).
            found.extend(
                Word(m.group(), start + m.start(), start + m.end())
                for m in _SEGMENT_WORD.finditer(segment)
            )
            continue
        found.extend(
            Word(char, start + k, start + k + 1)
            for k, char in enumerate(segment)
            if not _SEPARATOR.match(char)
        )
    return found


def _char_words(line: str) -> list[Word]:
    """The default tokens, with every Han or kana character split off as a token."""
    found = []
    for m in _TOKEN.finditer(line):
        cut = m.start()
        for char in _CJK_CHAR.finditer(m.group()):
            start = m.start() + char.start()
            if start > cut:
                found.append(Word(line[cut:start], cut, start))
            found.append(Word(char.group(), start, start + 1))
            cut = start + 1
        if cut < m.end():
            found.append(Word(line[cut : m.end()], cut, m.end()))
    return found


def _utf16_to_char(line: str):
    """ICU reports UTF-16 offsets; map them to Python (code point) offsets."""
    if all(ord(char) < 0x10000 for char in line):
        return lambda offset: offset
    positions = {}
    unit = 0
    for index, char in enumerate(line):
        positions[unit] = index
        unit += 2 if ord(char) >= 0x10000 else 1
    positions[unit] = len(line)
    return positions.__getitem__


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
