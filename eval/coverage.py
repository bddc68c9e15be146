"""Which languages the off-target identifier and COMET's encoder cover.

    python -m eval.coverage            # the table of docs/evaluation-metrics.md

COMET's wmt22-comet-da (and the other Unbabel COMET models) is built on XLM-R, pre-trained
on CC-100 in 100 languages: Conneau et al., *Unsupervised Cross-lingual Representation
Learning at Scale*, ACL 2020, appendix A, Table 6 (the same list is in COMET's README,
"Languages Covered"). `XLMR_LANGUAGES` is that list in the project's codes (ISO 639-1 as
in OPUS-100); XLM-R's romanized variants (Bengali, Hindi, Tamil, Telugu, Urdu) and Burmese
Zawgyi fall under the language's code, and its two Chinese scripts under `zh`. Its
"Norwegian" is CC-100's `no`, text that fastText's identifier called `no` (Bokmål): so
`nb` and `no` are covered and Nynorsk (`nn`) is not. A direction is covered when both its
languages are: COMET reads the source too.
"""

from __future__ import annotations

from data_prep.contract.languages import OPUS100_LANGUAGES
from eval.directions import load_grid, ordered_pairs
from eval.offtarget import accepted_labels

# Conneau et al. (2020), Table 6 (93 codes for its 100 entries: the
# romanized variants, Zawgyi and the second Chinese script share a code).
XLMR_LANGUAGES: frozenset[str] = frozenset({
    "af", "am", "ar", "as", "az", "be", "bg", "bn", "br", "bs", "ca", "cs", "cy", "da",
    "de", "el", "en", "eo", "es", "et", "eu", "fa", "fi", "fr", "fy", "ga", "gd", "gl",
    "gu", "ha", "he", "hi", "hr", "hu", "hy", "id", "is", "it", "ja", "jv", "ka", "kk",
    "km", "kn", "ko", "ku", "ky", "la", "lo", "lt", "lv", "mg", "mk", "ml", "mn", "mr",
    "ms", "my", "ne", "nl", "no", "om", "or", "pa", "pl", "ps", "pt", "ro", "ru", "sa",
    "sd", "si", "sk", "sl", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "th", "tl",
    "tr", "ug", "uk", "ur", "uz", "vi", "xh", "yi", "zh",
})  # fmt: skip
# Project codes that XLM-R covers under another code.
XLMR_ALIASES = {"nb": "no"}
SHIPPED_GRIDS = ("opus100", "freedict")


def comet_covers(lang: str) -> bool:
    return XLMR_ALIASES.get(lang, lang) in XLMR_LANGUAGES


def comet_covered(src: str, tgt: str) -> bool:
    """Both languages of a direction are among the COMET encoder's pre-training languages."""
    return comet_covers(src) and comet_covers(tgt)


def grid_languages(names: tuple[str, ...] = SHIPPED_GRIDS) -> list[str]:
    """Every language of the shipped grids, in order of first appearance."""
    found: dict[str, None] = {}
    for name in names:
        grid = load_grid(name)
        for pair in ordered_pairs(grid):
            found.update(dict.fromkeys(pair))
    return list(found)


def markdown_table(names: tuple[str, ...] = SHIPPED_GRIDS) -> str:
    """One row per language of the shipped grids: its identifier labels and COMET coverage."""
    lines = [
        "| code | language | off-target identifier (lid.176 labels) | COMET encoder (XLM-R) |",
        "|---|---|---|---|",
    ]
    for code in grid_languages(names):
        labels = ", ".join(accepted_labels(code)) or "not covered: n/a"
        comet = "yes" if comet_covers(code) else "**no**"
        lines.append(f"| {code} | {OPUS100_LANGUAGES.get(code, code)} | {labels} | {comet} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
