"""Sentence-pair filters. Every dropped pair is counted under its reason, never silently.

The filters mean the same in every script:
- lengths compare words of the script-aware segmentation (`wordtok.words(line, lang)`:
  ICU word breaks for Chinese, Japanese, Thai, Lao, Khmer and Burmese, spaces and
  punctuation elsewhere), so a Chinese sentence is as many words as its translation,
  not the one or two "words" its lack of spaces would give;
- a line whose letters are mostly outside its language's script (Unicode Script_Extensions
  property, UAX #24) is a wrong-language line: an English sentence on the Chinese side,
  a Khmer line in a Thai file. This cannot tell two languages of one script apart;
- a pair whose two sides are the same text is an untranslated copy.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import regex

from data_prep.contract.readers import RawPair, decode_utf8
from data_prep.wordtok import tokens

DROP_REASONS: tuple[str, ...] = (
    "empty",
    "invalid_utf8",
    "control_chars",
    "too_long",
    "identical",
    "wrong_script",
    "length_ratio",
    "duplicate",
)

# The scripts (Unicode Script property values, as in Scripts.txt) each language is written
# in, for the wrong-script filter; languages not listed are not checked. Where a language
# is written in two scripts (Serbian, Uzbek, Kurdish), both count.
_BY_SCRIPT: dict[str, str] = {
    "Latin": "af an az br bs ca cs cy da de en eo es et eu fi fr fy ga gd gl ha hr hu id ig "
    "is it li lt lv mg ms mt nb nl nn no oc pl pt ro rw se sh sk sl sq sv tk tr vi wa xh yo zu",
    "Cyrillic": "be bg kk ky mk mn ru tg tt uk",
    "Arabic": "ar fa ps ug ur",
    "Devanagari": "hi mr ne",
    "Bengali": "as bn",
    "Hebrew": "he yi",
}
LANGUAGE_SCRIPTS: dict[str, tuple[str, ...]] = {
    **{code: (script,) for script, codes in _BY_SCRIPT.items() for code in codes.split()},
    "sr": ("Cyrillic", "Latin"), "uz": ("Latin", "Cyrillic"), "ku": ("Latin", "Arabic"),
    "zh": ("Han",), "ja": ("Han", "Hiragana", "Katakana"), "ko": ("Hangul", "Han"),
    "th": ("Thai",), "lo": ("Lao",), "km": ("Khmer",), "my": ("Myanmar",),
    "dz": ("Tibetan",), "el": ("Greek",), "hy": ("Armenian",), "ka": ("Georgian",),
    "am": ("Ethiopic",), "gu": ("Gujarati",), "pa": ("Gurmukhi",), "or": ("Oriya",),
    "ta": ("Tamil",), "te": ("Telugu",), "kn": ("Kannada",), "ml": ("Malayalam",),
    "si": ("Sinhala",),
}  # fmt: skip
_LETTER = regex.compile(r"\p{L}")


@dataclass(frozen=True)
class CleanConfig:
    """Filter settings. Lengths are in characters; the ratio is over words of the
    script-aware segmentation (see the module docstring).

    The ratio test applies only when the longer side has at least
    `ratio_min_words` words, so that "Yes." / "Ja, gerne." is not dropped.
    `min_script_share`: the least share of a line's letters that must be in its
    language's script (0 turns the test off). `warn_drop_share`: `build` warns, and the
    manifest records, when cleaning drops more than this share of a pair's lines.
    """

    max_chars: int = 1000
    """Drop a pair with a side longer than this many characters (`too_long`)."""
    max_length_ratio: float = 3.0
    """Drop a pair whose sides' word counts differ by more than this factor."""
    ratio_min_words: int = 6
    """Apply the ratio test only when the longer side has at least this many words."""
    dedup: bool = False
    """Drop repeated pairs."""
    drop_identical: bool = True
    """Drop pairs whose two sides are the same text (untranslated copies)."""
    min_script_share: float = 0.5
    """Least share of a line's letters in its language's script; 0: off."""
    warn_drop_share: float = 0.2
    """Warn (and record in the manifest) when cleaning drops more of a pair's lines."""

    def problems(self, key: str = "clean") -> list[str]:
        found = []
        if self.max_chars < 1:
            found.append(f"{key}.max_chars: must be >= 1")
        if self.max_length_ratio < 1:
            found.append(f"{key}.max_length_ratio: must be >= 1")
        for name in ("min_script_share", "warn_drop_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                found.append(f"{key}.{name}: must be within [0, 1]")
        return found


@dataclass
class CleanReport:
    """Counts of kept pairs and of drops per reason."""

    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    warning: str | None = None

    def as_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": {reason: self.dropped.get(reason, 0) for reason in DROP_REASONS},
        }
        if self.warning:
            found["warning"] = self.warning
        return found

    def merge(self, other: CleanReport) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.dropped.update(other.dropped)

    def check_loss(self, name: str, max_share: float) -> str | None:
        """Set and return a warning when more than `max_share` of the lines were dropped."""
        lost = self.seen - self.kept
        if self.seen == 0 or lost / self.seen <= max_share:
            return None
        reasons = ", ".join(f"{r} {n}" for r, n in self.dropped.most_common() if n)
        self.warning = (
            f"{name}: cleaning dropped {lost} of {self.seen} lines ({lost / self.seen:.0%}, "
            f"more than clean.warn_drop_share={max_share:g}): {reasons}"
        )
        return self.warning


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


@functools.cache
def _script_pattern(lang: str) -> regex.Pattern[str] | None:
    scripts = LANGUAGE_SCRIPTS.get(lang)
    if scripts is None:
        return None
    # Letters (\p{L}) of any of the scripts; V1 enables the set intersection `&&`.
    return regex.compile(
        r"(?V1)[\p{L}&&[" + "".join(rf"\p{{scx={name}}}" for name in scripts) + "]]"
    )


def script_share(text: str, lang: str) -> float | None:
    """Share of the letters of `text` in the scripts of `lang` (None: no letters, or a
    language without a known script)."""
    pattern = _script_pattern(lang)
    letters = _LETTER.findall(text)
    if pattern is None or not letters:
        return None
    return len(pattern.findall(text)) / len(letters)


def n_words(text: str, lang: str | None) -> int:
    """Length of `text` in words of the script-aware segmentation."""
    return len(tokens(text, lang=lang))


def check_pair(
    src: str,
    tgt: str,
    config: CleanConfig,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
) -> str | None:
    """The reason to drop a decoded, stripped pair, or None to keep it."""
    if not src or not tgt:
        return "empty"
    if _has_control(src) or _has_control(tgt):
        return "control_chars"
    if len(src) > config.max_chars or len(tgt) > config.max_chars:
        return "too_long"
    if config.drop_identical and src == tgt:
        return "identical"
    if config.min_script_share > 0:
        for text, lang in ((src, src_lang), (tgt, tgt_lang)):
            share = script_share(text, lang) if lang else None
            if share is not None and share < config.min_script_share:
                return "wrong_script"
    n_src, n_tgt = n_words(src, src_lang), n_words(tgt, tgt_lang)
    longer, shorter = max(n_src, n_tgt), max(1, min(n_src, n_tgt))
    if longer >= config.ratio_min_words and longer / shorter > config.max_length_ratio:
        return "length_ratio"
    return None


def clean(
    pairs: Iterable[RawPair],
    config: CleanConfig,
    report: CleanReport,
    langs: tuple[str, str] | tuple[None, None] = (None, None),
) -> Iterator[tuple[str, str]]:
    """Yield the kept (src, tgt) pairs, stripped; count every drop in `report`.

    `langs`: the (source, target) language codes, for the script-aware filters."""
    seen_hashes: set[bytes] = set()
    for pair in pairs:
        report.seen += 1
        src, tgt = decode_utf8(pair.src), decode_utf8(pair.tgt)
        if src is None or tgt is None:
            report.dropped["invalid_utf8"] += 1
            continue
        src, tgt = src.strip(), tgt.strip()
        reason = check_pair(src, tgt, config, *langs)
        if reason is None and config.dedup:
            digest = hashlib.blake2b(f"{src}\t{tgt}".encode(), digest_size=8).digest()
            reason = "duplicate" if digest in seen_hashes else None
            seen_hashes.add(digest)
        if reason:
            report.dropped[reason] += 1
            continue
        report.kept += 1
        yield src, tgt
