"""data_prep.freedict on the real Debian package (fetched once with apt-get, then cached).

Set FREEDICT_DEB to a local dict-freedict-deu-eng_*.deb to skip the download; otherwise it
lands in $ALIGNINSTRUCT_CACHE/freedict (default .cache/freedict under the repository root).
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from data_prep.freedict import (
    DEFAULT_SEED,
    FreeDictError,
    alternatives,
    build_corpus,
    extract_dict,
    iter_entries,
    lexicon,
    sentence_pairs,
    split_pairs,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "freedict-deu-eng"
SPLITS = ("train", "dev", "test")
OUTPUTS = [f"{split}.{lang}" for split in SPLITS for lang in ("de", "en")] + ["lexicon.tsv"]
ALT_OUTPUTS = [f"{split}.en.alt" for split in SPLITS]
PLACEHOLDER = re.compile(r"\b(?:etw|jdn|jdm|jds|sth|sb)\.")
# Measured against the published split: 7,231 of 7,231 pairs and 98,683 of 98,683 lexicon
# headwords in common, both ways (the files are byte-identical).
MIN_OVERLAP = 0.99
ALTERNATIVES_JOIN = ", "  # how the dictionary joins alternative translations

Pair = tuple[str, str]


@pytest.fixture(scope="module")
def deb(freedict_deb: Path) -> Path:
    """The dict-freedict-deu-eng .deb (see tests/conftest.py)."""
    return freedict_deb


@pytest.fixture(scope="module")
def corpus(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The output folder and summary of one build_corpus run with the defaults."""
    out = tmp_path_factory.mktemp("freedict")
    return out, build_corpus(deb, out)


@pytest.fixture(scope="module")
def entries(deb: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str]]:
    """All dictionary entries of the package."""
    return list(iter_entries(*extract_dict(deb, tmp_path_factory.mktemp("deb"))))


@pytest.fixture(scope="module")
def pairs(entries: list[tuple[str, str]]) -> list[Pair]:
    """The published-reading sentence pairs, in dictionary order."""
    return sentence_pairs(entries)


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 file written one item per line."""
    text = path.read_text(encoding="utf-8")
    assert text.endswith("\n"), path
    return text[:-1].split("\n")


def joined_english(folder: Path, split: str) -> list[str]:
    """The English lines of a split as the dictionary gives them: the first reference and
    its alternatives (`.en.alt`, where written) joined with ", "."""
    english = read_lines(folder / f"{split}.en")
    alt_path = folder / f"{split}.en.alt"
    if not alt_path.is_file():
        return english
    alts = read_lines(alt_path)
    assert len(alts) == len(english), split
    return [ALTERNATIVES_JOIN.join([first, *filter(None, more.split("\t"))])
            for first, more in zip(english, alts, strict=True)]  # fmt: skip


def read_pairs(folder: Path, split: str) -> list[Pair]:
    """The (de, en) pairs of one split, checking both sides have as many lines."""
    german, english = read_lines(folder / f"{split}.de"), joined_english(folder, split)
    assert len(german) == len(english), split
    return list(zip(german, english, strict=True))


def all_pairs(folder: Path) -> set[Pair]:
    """Every (de, en) pair of train, dev and test."""
    return {pair for split in SPLITS for pair in read_pairs(folder, split)}


def lexicon_keys(folder: Path) -> set[str]:
    """The German headwords of a lexicon.tsv."""
    return {line.split("\t", 1)[0] for line in read_lines(folder / "lexicon.tsv")}


def test_build_corpus_counts(corpus: tuple[Path, dict[str, Any]], deb: Path) -> None:
    out, summary = corpus
    counts = {split: len(read_pairs(out, split)) for split in SPLITS}
    assert counts["dev"] == counts["test"] == 500
    assert 6000 <= counts["train"] <= 6500
    assert summary["splits"] == counts
    assert summary["pairs"] == sum(counts.values()) == len(all_pairs(out))
    assert summary["lexicon"] == len(read_lines(out / "lexicon.tsv")) > 90_000
    assert summary["package"] == deb.name and len(summary["sha256"]) == 64


def test_lines_are_clean(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, _ = corpus
    for name in OUTPUTS[:-1]:
        for line in read_lines(out / name):
            assert line and line == line.strip() and "\t" not in line and "  " not in line
            assert not PLACEHOLDER.search(line), (name, line)
            assert not re.search(r"[{}/]", line), (name, line)
    for line in read_lines(out / "lexicon.tsv"):
        german, english = line.split("\t")
        assert german and " " not in german and english and "  " not in english


def test_same_seed_is_byte_identical(
    deb: Path, corpus: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, summary = corpus
    assert build_corpus(deb, tmp_path, seed=DEFAULT_SEED) == summary
    for name in OUTPUTS + ALT_OUTPUTS:
        assert (tmp_path / name).read_bytes() == (out / name).read_bytes(), name


def test_alternatives_are_separate_references(corpus: tuple[Path, dict[str, Any]]) -> None:
    """FreeDict joins alternative translations into one line (issue 17); each split keeps
    the first in `.en` and the others in `.en.alt`, line-aligned."""
    out, summary = corpus
    found = {}
    for split in SPLITS:
        english, alts = read_lines(out / f"{split}.en"), read_lines(out / f"{split}.en.alt")
        assert len(alts) == len(english)
        assert summary["with_alternatives"][split] == sum(bool(a) for a in alts)
        found.update(zip(english, alts, strict=True))
        assert all(alternatives(line) == [line] for line in english)
    assert found["I daren't go home."] == "I'm scared to go home."
    assert summary["with_alternatives"]["test"] > 20  # 29 of the 500 test lines
    assert "\t" in "".join(read_lines(out / "train.en.alt"))  # lines with three or four


def test_alternatives_split_only_between_sentences() -> None:
    """Lines of the FreeDict package: a comma after an abbreviation or an ellipsis inside
    one translation does not start another."""
    assert alternatives("I won't tolerate that!, I won't accept that!, I won't have that!") == [
        "I won't tolerate that!", "I won't accept that!", "I won't have that!"
    ]  # fmt: skip
    assert alternatives("How about …?, What about …?") == ["How about …?", "What about …?"]
    for one in ("In 776 B.C., the first Olympic Games were held at the foot of Mount Olympus.",
                "I'll meet you …, ok?", "Of 10 attempts, 7 are successful."):  # fmt: skip
        assert alternatives(one) == [one]


def test_other_seed_changes_order_only(
    corpus: tuple[Path, dict[str, Any]], pairs: list[Pair]
) -> None:
    out, _ = corpus
    same = split_pairs(pairs, seed=DEFAULT_SEED)
    assert all(same[split] == read_pairs(out, split) for split in SPLITS)
    other = split_pairs(pairs, seed=DEFAULT_SEED + 1)
    assert {split: len(other[split]) for split in SPLITS} == {s: len(same[s]) for s in SPLITS}
    assert other["dev"] != same["dev"] and other["train"] != same["train"]
    assert {pair for items in other.values() for pair in items} == set(pairs)


def test_unpublished_split_keeps_recurring_sentences_in_one_split(pairs: list[Pair]) -> None:
    """`as_published=False` splits with data_prep.split's grouping: an English line that
    recurs is in one split only, which the published shuffle does not ensure."""
    counts = Counter(en for _, en in pairs)
    assert any(n > 1 for n in counts.values())  # the corpus has them: the check can fail

    def leaks(splits: dict[str, list[Pair]]) -> set[str]:
        held_out = {en for name in ("dev", "test") for _, en in splits[name]}
        return held_out & {en for _, en in splits["train"]}

    grouped = split_pairs(pairs, seed=DEFAULT_SEED, as_published=False)
    assert leaks(grouped) == set() and leaks(split_pairs(pairs, seed=DEFAULT_SEED)) != set()
    assert sorted(p for items in grouped.values() for p in items) == sorted(pairs)
    assert 0 < len(grouped["test"]) <= 500 and 0 < len(grouped["dev"]) <= 500
    assert grouped["train"] == [p for p in pairs if p in set(grouped["train"])]  # corpus order


def test_sentence_entry_example(entries: list[tuple[str, str]], pairs: list[Pair]) -> None:
    assert (
        "Ich trau' mich nicht nach Hause.",
        "I daren't go home., I'm scared to go home.",
    ) in pairs
    assert len({german for german, _ in pairs}) == len(pairs)
    assert not any(headword.startswith("00database") for headword, _ in entries)


@pytest.mark.skipif(not REFERENCE.is_dir(), reason=f"no published split at {REFERENCE}")
def test_matches_published_split(corpus: tuple[Path, dict[str, Any]]) -> None:
    out, _ = corpus
    ours, ref = all_pairs(out), all_pairs(REFERENCE)
    common = len(ours & ref)
    assert common / len(ref) >= MIN_OVERLAP and common / len(ours) >= MIN_OVERLAP
    ours_keys, ref_keys = lexicon_keys(out), lexicon_keys(REFERENCE)
    common = len(ours_keys & ref_keys)
    assert common / len(ref_keys) >= MIN_OVERLAP and common / len(ours_keys) >= MIN_OVERLAP
    for name in OUTPUTS:
        if name.endswith(".en"):  # the published English lines: first and alternatives joined
            split = name.removesuffix(".en")
            assert joined_english(out, split) == read_lines(REFERENCE / name), name
            continue
        assert (out / name).read_bytes() == (REFERENCE / name).read_bytes(), name


def test_lexicon_spot_check(
    corpus: tuple[Path, dict[str, Any]], entries: list[tuple[str, str]]
) -> None:
    out, _ = corpus
    published = dict(line.split("\t") for line in read_lines(out / "lexicon.tsv"))
    assert "cat" in published["Katze"].split()
    assert published["Stadt"] == "city town"
    # The published reading loses entries glued to the one before them; the full one keeps them.
    assert "house" not in published["Haus"].split()
    full = lexicon(entries, as_published=False)
    assert "house" in full["Haus"] and "dog" in full["Hund"]
    assert len(full) > len(published)


@pytest.mark.integration
def test_bad_deb_names_the_file(tmp_path: Path) -> None:
    fake = tmp_path / "not-a-package.deb"
    fake.write_text("this is not a Debian package\n", encoding="utf-8")
    with pytest.raises(FreeDictError, match=re.escape(str(fake))):
        build_corpus(fake, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    missing = tmp_path / "missing.deb"
    with pytest.raises(FreeDictError, match=re.escape(str(missing))):
        extract_dict(missing, tmp_path / "x")
