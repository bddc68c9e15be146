"""Nine languages in nine scripts (tests/assets/scripts/) through one `data_prep build`
(MT+Align->MT, temperature mixing), a tiny training run and `eval run`: no ordinary
pair is lost to cleaning, the segmentation is recorded, the AlignInstruct, Hint and
Revise samples of scripts written without spaces name words (ICU word breaks), and every
direction is decoded and scored."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from data_prep.wordtok import UNSEGMENTED, WORDTOK_VERSION, segmentation, words
from tests.support.languages import LANGUAGES, N_TRAIN, cli, instruction_samples, prepare
from tests.support.quick_train import quick_tiny_model

pytestmark = pytest.mark.integration

ASSERTION = re.compile(r'Assertion: "(.*)" can be semantically aligned with "(.*)"\.$')
HINT = re.compile(r'\("(.*?)", "(.*?)"\)')
REVISE = re.compile(r'The incorrectly translated word is "(.*)"\. It should be "(.*)"\.$')


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("languages")
    recipe, grid = prepare(out)
    result = cli("data_prep", "build", recipe, "--out", out / "shards", "--cache", out / "cache")
    assert result.returncode == 0, result.stderr[-3000:]
    (out / "build.out").write_text(result.stdout, encoding="utf-8")
    quick_tiny_model(out / "shards", out / "model", steps=40)
    result = cli("eval", "run", "--grid", grid, "--model", out / "model", "--out", out / "eval",
                 "--max-new-tokens", "16")  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_build_keeps_every_pair_and_records_segmentation_and_mix(run: Path) -> None:
    manifest = json.loads((run / "shards" / "manifest.json").read_text())
    for lang in LANGUAGES:
        clean = manifest["corpora"][f"{lang}-en"]["clean"]
        assert clean["kept"] == clean["seen"] == N_TRAIN, (lang, clean)
        expected = segmentation(lang)
        assert manifest["segmentation"][lang] == expected
        assert (expected != WORDTOK_VERSION) == (lang in UNSEGMENTED)
    for stage in manifest["stages"]:
        mix = stage["mixing"]
        assert mix["method"] == "temperature"
        assert {p: v["drawn"] for p, v in mix["pairs"].items()} == {
            f"{lang}-en": N_TRAIN for lang in LANGUAGES
        }
        assert (
            f"pairs mixed: {stage['name']}: temperature T=5: zh-en 11.1%"
            in (run / "build.out").read_text()
        )
    assert manifest["stages"][1]["by_direction"]["mt:km-en"] == N_TRAIN


def _named(sample_prompt: str, answer: str, kind: str) -> list[tuple[int, str]]:
    """(side, word) named by a sample: side 0 is its source language, 1 its target."""
    if kind == "align":
        match = ASSERTION.search(sample_prompt)
        assert match, sample_prompt
        return [(0, match.group(1)), (1, match.group(2))]
    if kind == "hint":
        return [(side, w) for pair in HINT.findall(sample_prompt) for side, w in enumerate(pair)]
    match = REVISE.search(answer.strip())
    assert match, answer
    return [(1, match.group(2))]


def test_instruction_samples_name_words_not_clauses(run: Path) -> None:
    samples = instruction_samples(run, run / "cache", per_kind=3)
    kinds = {(s.src, s.kind) for s in samples}
    for lang in UNSEGMENTED.keys() & set(LANGUAGES):
        assert {(lang, "align"), (lang, "hint"), (lang, "revise")} <= kinds, lang
    corpus = run / "shards" / "corpus"
    for sample in samples:
        langs = (sample.src, sample.tgt)
        for side, word in _named(sample.prompt, sample.answer, sample.kind):
            lang = langs[side]
            lines = (corpus / f"{sample.src}-en.{lang}").read_text("utf-8").splitlines()
            # A word of the script-aware segmentation of some training line of its language,
            # and (for scripts without spaces) much shorter than the line: not a clause.
            owners = [line for line in lines if word in {w.text for w in words(line, lang)}]
            assert owners, (sample.kind, lang, word)
            if lang in UNSEGMENTED:
                assert all(len(word) <= len(line) / 2 for line in owners), (lang, word)


def test_every_direction_is_decoded_and_scored(run: Path) -> None:
    scores = json.loads((run / "eval" / "scores.json").read_text())
    expected = {d for lang in LANGUAGES for d in (f"{lang}-en", f"en-{lang}")}
    assert set(scores["directions"]) == expected
    for name in expected:
        hyps = (run / "eval" / "hyps" / f"{name}.txt").read_text("utf-8").split("\n")
        assert len(hyps) == 12 - N_TRAIN + 1 and hyps[-1] == ""  # 2 held-out lines each
        assert scores["directions"][name]["sentences"] == 12 - N_TRAIN
