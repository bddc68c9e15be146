"""The sentence pairs of tests/assets/scripts/ (written for these tests; see its README)."""

from __future__ import annotations

from pathlib import Path

SCRIPTS = Path(__file__).resolve().parents[1] / "assets" / "scripts"
# Chinese, Japanese, Thai, Khmer, Burmese (no spaces between words); Russian (Cyrillic),
# Arabic, Hindi (Devanagari) and French (Latin).
LANGUAGES: tuple[str, ...] = ("zh", "ja", "th", "km", "my", "ru", "ar", "hi", "fr")
UNSPACED: tuple[str, ...] = ("zh", "ja", "th", "km", "my")


def ordinary(lang: str) -> list[tuple[str, str]]:
    """The 12 (lang, English) translations of `{lang}-en.tsv`."""
    lines = (SCRIPTS / f"{lang}-en.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines]  # type: ignore[misc]


def misaligned() -> list[tuple[str, str, str, str, str]]:
    """(lang, non-English side, English side, expected reason, what is wrong) rows."""
    lines = (SCRIPTS / "misaligned.tsv").read_text(encoding="utf-8").splitlines()
    return [tuple(line.split("\t")) for line in lines if not line.startswith("#")]  # type: ignore[misc]
