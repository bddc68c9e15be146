"""data_prep.cleaning: every dropped pair is counted under its reason."""

from __future__ import annotations

from collections import Counter

import pytest

from data_prep.cleaning import (
    DROP_REASONS,
    CleanConfig,
    CleanReport,
    check_pair,
    clean,
    script_share,
)
from data_prep.contract.readers import RawPair
from tests.data_prep.scripts_assets import LANGUAGES, misaligned, ordinary


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


# Every script: ordinary translations survive the defaults, misaligned pairs do not.
# Sentences: tests/assets/scripts/ (written for these tests). The script of each language
# is the Unicode Script property (Scripts.txt / UAX #24: Chinese is Han, Japanese Han,
# Hiragana and Katakana, Thai Thai, Khmer Khmer, Burmese Myanmar, Russian Cyrillic,
# Arabic Arabic, Hindi Devanagari, French Latin).


@pytest.mark.parametrize("lang", LANGUAGES)
def test_ordinary_translations_survive_the_defaults(lang: str) -> None:
    pairs = ordinary(lang)
    for langs, rows in (((lang, "en"), pairs), (("en", lang), [p[::-1] for p in pairs])):
        report = CleanReport()
        raw = [RawPair(i, a, b) for i, (a, b) in enumerate(rows, start=1)]
        kept = list(clean(raw, CleanConfig(), report, langs))
        assert kept == rows, report.as_dict()


@pytest.mark.parametrize(
    ("lang", "src", "tgt", "reason", "why"), misaligned(), ids=lambda v: v[:12]
)
def test_misaligned_pairs_are_dropped(lang: str, src: str, tgt: str, reason: str, why: str) -> None:
    assert check_pair(src, tgt, CleanConfig(), lang, "en") == reason, why
    assert check_pair(tgt, src, CleanConfig(), "en", lang) == reason, why


def test_misaligned_set_covers_every_language_and_reason() -> None:
    rows = misaligned()
    assert {row[0] for row in rows} == set(LANGUAGES)
    assert {row[3] for row in rows} == {"length_ratio", "wrong_script", "identical"}


def test_the_ratio_counts_words_of_the_segmentation() -> None:
    # "我每天早上喝一杯咖啡。" is one whitespace "word" but 7 ICU words.
    zh, en = "我每天早上喝一杯咖啡。", "I drink a cup of coffee every morning."
    config = CleanConfig(max_length_ratio=2.0)
    assert check_pair(zh, en, config, "zh", "en") is None
    assert check_pair(zh, en, config) == "length_ratio"  # no language: spaces only


def test_wrong_script_needs_a_known_language_and_letters() -> None:
    assert script_share("Hello", "zh") == 0.0
    assert script_share("我买了iPhone。", "zh") == pytest.approx(3 / 9)
    assert script_share("2024.", "zh") is None  # no letters
    assert script_share("Hello", "kha") is None  # no known script: not checked
    assert check_pair("Hello there.", "Hello!", CleanConfig(), "kha", "en") is None
    # Japanese lines hold kana and kanji; the long vowel mark is kana by Script_Extensions.
    assert script_share("コーヒーを飲む", "ja") == 1.0
    off = CleanConfig(min_script_share=0.0)
    assert check_pair("Good morning.", "Good day.", off, "zh", "en") is None


def test_identical_copies_are_dropped_unless_turned_off() -> None:
    assert check_pair("Tom.", "Tom.", CleanConfig()) == "identical"
    assert check_pair("Tom.", "Tom.", CleanConfig(drop_identical=False)) is None


def test_a_pair_that_loses_many_lines_is_flagged_with_its_reasons() -> None:
    report = CleanReport(seen=10, kept=7, dropped=Counter(length_ratio=2, wrong_script=1))
    assert report.check_loss("zh-en", 0.5) is None
    assert "warning" not in report.as_dict()
    warning = report.check_loss("zh-en", 0.2)
    assert warning == (
        "zh-en: cleaning dropped 3 of 10 lines (30%, more than clean.warn_drop_share=0.2): "
        "length_ratio 2, wrong_script 1"
    )
    assert report.as_dict()["warning"] == warning
    assert CleanReport().check_loss("x-y", 0.0) is None  # nothing seen


def test_share_settings_are_checked() -> None:
    config = CleanConfig(min_script_share=1.5, warn_drop_share=-0.1)
    assert config.problems("clean") == [
        "clean.min_script_share: must be within [0, 1]",
        "clean.warn_drop_share: must be within [0, 1]",
    ]
