"""data_prep.wordtok: the word tokenization that alignment links index into."""

from __future__ import annotations

import itertools

import pytest

from data_prep import wordtok
from data_prep.wordtok import WORDTOK_VERSION, Word, is_content, segmentation, tokens, words
from tests.data_prep.scripts_assets import LANGUAGES, UNSPACED, ordinary

LINES = [
    "Hello, world!",
    "Don't use the E-Mail address (x@y.de) — ok?",
    "  Leading and   inner spaces\tand tabs  ",
    "L’homme qu’il a vu: «Bonjour», 1990's.",
    "Straße, Käse und café\u0301.",
    "Привет, мир! Γειά σου κόσμε;",
    "",
]


@pytest.mark.parametrize("line", LINES)
def test_spans_reproduce_the_text(line: str) -> None:
    found = words(line)
    for word in found:
        assert line[word.start : word.end] == word.text
    starts = [w.start for w in found]
    assert starts == sorted(starts)
    assert all(a.end <= b.start for a, b in itertools.pairwise(found))
    assert [w.text for w in found] == tokens(line)
    # Nothing but whitespace lies between tokens.
    assert "".join(line.split()) == "".join(w.text for w in found)


def test_words_have_offsets() -> None:
    assert words("Hi, you.") == [
        Word("Hi", 0, 2),
        Word(",", 2, 3),
        Word("you", 4, 7),
        Word(".", 7, 8),
    ]


def test_punctuation_is_separate() -> None:
    assert tokens("Hello, world!") == ["Hello", ",", "world", "!"]
    assert tokens("(x@y.de)...") == ["(", "x", "@", "y", ".", "de", ")", ".", ".", "."]
    assert tokens("«Bonjour»") == ["«", "Bonjour", "»"]


def test_apostrophes_and_hyphens_stay_inside_words() -> None:
    assert tokens("Don't use E-Mail, it's fine.") == [
        "Don't", "use", "E-Mail", ",", "it's", "fine", ".",
    ]  # fmt: skip
    assert tokens("l’homme qu’il") == ["l’homme", "qu’il"]
    assert tokens("mother-in-law's") == ["mother-in-law's"]


def test_outer_apostrophes_and_hyphens_are_separate() -> None:
    assert tokens("-ab- 'cd' x--y") == ["-", "ab", "-", "'", "cd", "'", "x", "-", "-", "y"]


def test_digits_and_underscores_are_word_characters() -> None:
    assert tokens("snake_case 1990 3.5") == ["snake_case", "1990", "3", ".", "5"]


def test_lowercase() -> None:
    assert tokens("Hallo WELT, Straße", lowercase=True) == ["hallo", "welt", ",", "straße"]
    assert tokens("Hallo WELT") == ["Hallo", "WELT"]


def test_combining_accent_stays_in_the_word() -> None:
    assert tokens("cafe\u0301 noir") == ["cafe\u0301", "noir"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("नमस्ते दुनिया", ["नमस्ते", "दुनिया"]),  # Hindi: virama and vowel signs are marks
        ("ආයුබෝවන් ලෝකය", ["ආයුබෝවන්", "ලෝකය"]),  # Sinhala, one of the unseen languages
    ],
    ids=["hindi", "sinhala"],
)
def test_marks_of_other_scripts_stay_in_the_word(line: str, expected: list[str]) -> None:
    # The module promises "a run of letters, digits, marks or underscores" is one word.
    assert tokens(line) == expected


@pytest.mark.parametrize("token", ["Hallo", "don't", "E-Mail", "l’homme", "café", "мир", "ÆØÅ"])
def test_words_are_content(token: str) -> None:
    assert is_content(token)


@pytest.mark.parametrize("token", [".", ",", "!", "—", "«", "@", "€", "1990", "42", "_", "-", "'"])
def test_punctuation_symbols_and_numbers_are_not_content(token: str) -> None:
    assert not is_content(token)


# Scripts written without spaces: ICU's word break iterator (UAX #29 word boundaries, with
# ICU's dictionary-based breaking for Han/kana, Thai, Lao, Khmer and Burmese text; see
# ICU's "Boundary Analysis" user guide). The expected words below are what ICU 78's
# dictionaries give for the sentences of tests/assets/scripts/, checked by a reader: each
# is a dictionary word of its language (咖啡 "coffee", コーヒー "coffee", กาแฟ "coffee",
# កាហ្វេ "coffee", ကော်ဖီ "coffee").


@pytest.mark.parametrize(
    ("lang", "line", "expected"),
    [
        ("zh", "我每天早上喝一杯咖啡。", ["我", "每天", "早上", "喝", "一杯", "咖啡", "。"]),
        (
            "ja",
            "私は毎朝コーヒーを一杯飲みます。",
            ["私", "は", "毎朝", "コーヒー", "を", "一杯", "飲", "み", "ます", "。"],
        ),
        ("th", "ฉันดื่มกาแฟหนึ่งแก้วทุกเช้า", ["ฉัน", "ดื่ม", "กาแฟ", "หนึ่ง", "แก้ว", "ทุก", "เช้า"]),
        (
            "km",
            "ខ្ញុំផឹកកាហ្វេមួយកែវរៀងរាល់ព្រឹក។",
            ["ខ្ញុំ", "ផឹក", "កាហ្វេ", "មួយ", "កែវ", "រៀងរាល់", "ព្រឹក", "។"],
        ),
        (
            "my",
            "ကျွန်တော် မနက်တိုင်း ကော်ဖီတစ်ခွက် သောက်တယ်။",
            ["ကျွန်တော်", "မနက်", "တိုင်း", "ကော်ဖီ", "တစ်", "ခွက်", "သောက်", "တယ်", "။"],
        ),
    ],
    ids=["zh", "ja", "th", "km", "my"],
)
def test_unspaced_scripts_are_segmented_into_words(
    lang: str, line: str, expected: list[str]
) -> None:
    assert tokens(line, lang=lang) == expected
    # Without the language the line is one or a few whitespace "words": whole clauses.
    assert len(tokens(line)) <= 5


@pytest.mark.parametrize("lang", UNSPACED)
def test_segmented_sentences_have_about_as_many_words_as_english(lang: str) -> None:
    for line, english in ordinary(lang):
        # Content words (no punctuation: Thai writes no full stop).
        n = sum(map(is_content, tokens(line, lang=lang)))
        n_en = sum(map(is_content, tokens(english)))
        assert n_en / 2 <= n <= n_en * 2, (line, tokens(line, lang=lang))


@pytest.mark.parametrize("lang", LANGUAGES)
def test_spans_reproduce_every_script(lang: str) -> None:
    for line, _ in ordinary(lang):
        found = words(line, lang)
        assert all(line[w.start : w.end] == w.text for w in found)
        assert all(a.end <= b.start for a, b in itertools.pairwise(found))
        assert not any(ch.isspace() for w in found for ch in w.text)  # aligners split on spaces
        assert "".join(line.split()) == "".join(w.text for w in found)


def test_spaced_languages_keep_todays_tokens() -> None:
    for lang in ("ru", "ar", "hi", "fr", "de", "en"):
        for line in LINES:
            assert words(line, lang) == words(line)
        assert segmentation(lang) == WORDTOK_VERSION


def test_icu_offsets_past_characters_outside_the_bmp() -> None:
    # ICU counts UTF-16 units: "😀" is two of them but one Python character.
    line = "我😀喜欢\u200b咖啡"
    found = words(line, "zh")
    assert [w.text for w in found] == ["我", "😀", "喜欢", "咖啡"]
    assert all(line[w.start : w.end] == w.text for w in found)  # ZWSP is no token


def test_segmentation_names_the_segmenter_and_its_version() -> None:
    from importlib.metadata import version

    import icu4py

    expected = f"{WORDTOK_VERSION}+icu4py-{version('icu4py')}/icu-{icu4py.icu_version}"
    assert segmentation("th") == segmentation("zh") == expected


def test_without_icu_chinese_and_japanese_fall_back_to_characters(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(wordtok, "_icu", lambda: None)
    expected = ["我", "喝", "咖", "啡", "。", "iPhone", "15"]
    assert tokens("我喝咖啡。iPhone 15", lang="zh") == expected
    assert tokens("コーヒーを飲む", lang="ja") == ["コ", "ー", "ヒ", "ー", "を", "飲", "む"]
    assert segmentation("ja") == f"{WORDTOK_VERSION}+{wordtok.CHARS_VERSION}"
    for lang in ("th", "km", "my", "lo"):
        with pytest.raises(wordtok.SegmenterMissing, match="icu4py"):
            words("ฉันดื่มกาแฟ", lang)
