"""data_prep.wordtok: the word tokenization that alignment links index into."""

from __future__ import annotations

import itertools

import pytest

from data_prep.wordtok import Word, is_content, tokens, words

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
