"""Sentence-pair filters. Every dropped pair is counted under its reason, never silently."""

from __future__ import annotations

import hashlib
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from data_prep.contract.readers import RawPair, decode_utf8
from data_prep.wordtok import tokens

DROP_REASONS: tuple[str, ...] = (
    "empty",
    "invalid_utf8",
    "control_chars",
    "too_long",
    "length_ratio",
    "duplicate",
)


@dataclass(frozen=True)
class CleanConfig:
    """Filter settings. Lengths are in characters; the ratio is over word tokens.

    The ratio test applies only when the longer side has at least
    `ratio_min_words` words, so that "Yes." / "Ja, gerne." is not dropped.
    """

    max_chars: int = 1000
    max_length_ratio: float = 3.0
    ratio_min_words: int = 6
    dedup: bool = False

    def problems(self, key: str = "clean") -> list[str]:
        found = []
        if self.max_chars < 1:
            found.append(f"{key}.max_chars: must be >= 1")
        if self.max_length_ratio < 1:
            found.append(f"{key}.max_length_ratio: must be >= 1")
        return found


@dataclass
class CleanReport:
    """Counts of kept pairs and of drops per reason."""

    seen: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {
            "seen": self.seen,
            "kept": self.kept,
            "dropped": {reason: self.dropped.get(reason, 0) for reason in DROP_REASONS},
        }

    def merge(self, other: CleanReport) -> None:
        self.seen += other.seen
        self.kept += other.kept
        self.dropped.update(other.dropped)


def _has_control(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" for ch in text)


def check_pair(src: str, tgt: str, config: CleanConfig) -> str | None:
    """The reason to drop a decoded, stripped pair, or None to keep it."""
    if not src or not tgt:
        return "empty"
    if _has_control(src) or _has_control(tgt):
        return "control_chars"
    if len(src) > config.max_chars or len(tgt) > config.max_chars:
        return "too_long"
    n_src, n_tgt = len(tokens(src)), len(tokens(tgt))
    longer, shorter = max(n_src, n_tgt), max(1, min(n_src, n_tgt))
    if longer >= config.ratio_min_words and longer / shorter > config.max_length_ratio:
        return "length_ratio"
    return None


def clean(
    pairs: Iterable[RawPair], config: CleanConfig, report: CleanReport
) -> Iterator[tuple[str, str]]:
    """Yield the kept (src, tgt) pairs, stripped; count every drop in `report`."""
    seen_hashes: set[bytes] = set()
    for pair in pairs:
        report.seen += 1
        src, tgt = decode_utf8(pair.src), decode_utf8(pair.tgt)
        if src is None or tgt is None:
            report.dropped["invalid_utf8"] += 1
            continue
        src, tgt = src.strip(), tgt.strip()
        reason = check_pair(src, tgt, config)
        if reason is None and config.dedup:
            digest = hashlib.blake2b(f"{src}\t{tgt}".encode(), digest_size=8).digest()
            reason = "duplicate" if digest in seen_hashes else None
            seen_hashes.add(digest)
        if reason:
            report.dropped[reason] += 1
            continue
        report.kept += 1
        yield src, tgt
