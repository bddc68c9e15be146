"""data_prep.cleaning: every dropped pair is counted under its reason."""

from __future__ import annotations

from collections import Counter

import pytest

from data_prep.cleaning import DROP_REASONS, CleanConfig, CleanReport, check_pair, clean
from data_prep.contract.readers import RawPair


def run(pairs: list[tuple[bytes | str, bytes | str]], config: CleanConfig):
    """Clean `pairs` (numbered from 1); returns (kept pairs, report dict)."""
    report = CleanReport()
    raw = [RawPair(i, src, tgt) for i, (src, tgt) in enumerate(pairs, start=1)]
    kept = list(clean(raw, config, report))
    return kept, report.as_dict()


def drops(**counts: int) -> dict[str, int]:
    return {reason: counts.get(reason, 0) for reason in DROP_REASONS}


def assert_totals(report: dict) -> None:
    assert report["seen"] == report["kept"] + sum(report["dropped"].values())


CONFIG = CleanConfig(max_chars=40, max_length_ratio=2.0, ratio_min_words=6, dedup=True)

SIX_WORDS = "one two three four five six"


@pytest.mark.parametrize(
    ("src", "tgt", "reason"),
    [
        (b"", b"Hello.", "empty"),
        (b"Hallo.", b"   \t ", "empty"),
        (b"caf\xe9", b"cafe", "invalid_utf8"),
        (b"Hallo.", b"\xff", "invalid_utf8"),
        (b"Hal\x07lo.", b"Hello.", "control_chars"),
        (b"Hallo.", b"Hel\x00lo.", "control_chars"),
        (b"Hallo\tWelt.", b"Hello world.", "control_chars"),
        (b"x" * 41, b"Hello.", "too_long"),
        (b"Hallo.", "ü".encode() * 41, "too_long"),  # characters, not bytes
        (SIX_WORDS.encode(), b"eins zwei", "length_ratio"),
        (b"eins zwei", SIX_WORDS.encode(), "length_ratio"),
    ],
)
def test_each_drop_reason_is_counted(src: bytes, tgt: bytes, reason: str) -> None:
    good = (b"Guten Morgen.", b"Good morning.")
    kept, report = run([good, (src, tgt), good[::-1]], CONFIG)
    assert kept == [("Guten Morgen.", "Good morning."), ("Good morning.", "Guten Morgen.")]
    assert report == {"seen": 3, "kept": 2, "dropped": drops(**{reason: 1})}


def test_max_chars_is_inclusive() -> None:
    kept, report = run([("x" * 40, "y" * 40)], CONFIG)
    assert kept == [("x" * 40, "y" * 40)]
    assert report["kept"] == 1


def test_short_pairs_are_not_dropped_for_ratio() -> None:
    # "Yes." is 2 tokens, "Ja, sehr gerne." is 5: a ratio of 2.5 > 2.0, but the longer
    # side has fewer than ratio_min_words (6) words, so the ratio test does not apply.
    assert check_pair("Yes.", "Ja, sehr gerne.", CONFIG) is None
    # From 6 words on it does: 7 / 2 = 3.5 > 2.0.
    assert check_pair("Yes.", "Ja, sehr gerne, danke.", CONFIG) == "length_ratio"
    # A longer side of exactly ratio_min_words words is tested: 6 / 2 = 3.0 > 2.0.
    assert check_pair("Ja!", SIX_WORDS, CONFIG) == "length_ratio"
    # And a ratio at the limit is kept: 6 / 3 = 2.0.
    assert check_pair("Yes, sure", SIX_WORDS, CONFIG) is None


def test_ratio_counts_word_tokens_not_characters() -> None:
    long_word = "Donaudampfschifffahrtsgesellschaftskapitän"
    config = CleanConfig(max_chars=100, max_length_ratio=2.0, ratio_min_words=1)
    assert check_pair(long_word, "captain", config) is None


def test_all_reasons_together_with_consistent_totals() -> None:
    pairs: list[tuple[bytes | str, bytes | str]] = [
        (b"Hallo Welt.", b"Hello world."),  # kept
        (b"  Hallo Welt.  ", b"\tHello world.\r"),  # duplicate once stripped
        (b"", b"Hello."),  # empty
        (b"\xc3\x28", b"Hello."),  # invalid utf-8
        (b"Hal\x1blo.", b"Hello."),  # control char (ESC)
        (b"z" * 41, b"Hello."),  # too long
        (SIX_WORDS.encode(), b"eins."),  # ratio 6 / 2
        (b"Guten Tag.", b"Good day."),  # kept
        (b"Guten Tag.", b"Good day."),  # duplicate
        ("Tschüss.", "Bye."),  # str input (Hugging Face reader) is fine too
    ]
    kept, report = run(pairs, CONFIG)
    assert kept == [
        ("Hallo Welt.", "Hello world."),
        ("Guten Tag.", "Good day."),
        ("Tschüss.", "Bye."),
    ]
    assert report == {
        "seen": 10,
        "kept": 3,
        "dropped": drops(
            empty=1, invalid_utf8=1, control_chars=1, too_long=1, length_ratio=1, duplicate=2
        ),
    }
    assert_totals(report)


def test_duplicates_are_kept_without_dedup() -> None:
    pairs = [(b"Ja.", b"Yes."), (b"Ja.", b"Yes."), (b" Ja. ", b"Yes.")]
    no_dedup = CleanConfig(dedup=False)
    kept, report = run(pairs, no_dedup)
    assert kept == [("Ja.", "Yes.")] * 3
    assert report == {"seen": 3, "kept": 3, "dropped": drops()}


def test_dedup_is_on_the_pair_not_on_one_side() -> None:
    pairs = [(b"Ja.", b"Yes."), (b"Ja.", b"Yeah."), (b"Jawohl.", b"Yes."), (b"Ja.", b"Yes.")]
    kept, report = run(pairs, CONFIG)
    assert kept == [("Ja.", "Yes."), ("Ja.", "Yeah."), ("Jawohl.", "Yes.")]
    assert report["dropped"] == drops(duplicate=1)


def test_whitespace_is_stripped_on_both_sides() -> None:
    pairs = [(b"  Hallo   Welt. \t", "\u00a0Hello world.\u2003"), (b"\tJa.\r", b" Yes.\x0c")]
    kept, report = run(pairs, CleanConfig())
    # Only the ends are stripped; inner whitespace is left as it was.
    assert kept == [("Hallo   Welt.", "Hello world."), ("Ja.", "Yes.")]
    assert report["kept"] == 2


def test_report_counts_as_pairs_are_consumed() -> None:
    report = CleanReport()
    stream = clean([RawPair(1, b"a", b"b"), RawPair(2, b"", b"b")], CleanConfig(), report)
    assert report.seen == 0  # lazy: nothing read yet
    assert next(stream) == ("a", "b")
    assert (report.seen, report.kept) == (1, 1)
    assert list(stream) == []
    assert report.as_dict() == {"seen": 2, "kept": 1, "dropped": drops(empty=1)}


def test_report_merge_adds_counts() -> None:
    first = CleanReport(seen=3, kept=1, dropped=Counter(empty=1, duplicate=1))
    second = CleanReport(seen=2, kept=1, dropped=Counter(empty=1))
    first.merge(second)
    assert first.as_dict() == {"seen": 5, "kept": 2, "dropped": drops(empty=2, duplicate=1)}
    assert_totals(first.as_dict())


def test_config_problems_name_the_keys() -> None:
    assert CleanConfig().problems() == []
    assert CleanConfig(max_chars=0, max_length_ratio=0.5).problems("recipe.clean") == [
        "recipe.clean.max_chars: must be >= 1",
        "recipe.clean.max_length_ratio: must be >= 1",
    ]
