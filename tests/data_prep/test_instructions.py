"""Instruction builders on real aligned FreeDict pairs: negatives never state a linked
pair, positives always do, and output is a pure function of inputs and seed."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from data_prep.aligned import PairPlan, prepare_pair, read_split
from data_prep.contract.templates import DEFAULT_TEMPLATES
from data_prep.instructions import (
    AlignedPair,
    BuildSettings,
    InstructionBuilder,
    one_to_one_content_links,
    qualifying_links,
)
from data_prep.recipe import (
    AlignInstructConfig,
    HintInstructConfig,
    ReviseInstructConfig,
    load_recipe,
)
from data_prep.wordtok import words

ASSERTION = re.compile(r'Assertion: "(.*)" can be semantically aligned with "(.*)"\.$')
NAMES = {"de": "German", "en": "English"}


def settings(**changes: object) -> BuildSettings:
    base = BuildSettings(
        templates=DEFAULT_TEMPLATES,
        names=NAMES,
        ratios={"mt": 1.0, "align": 2.0, "hint": 1.0, "revise": 1.0},
        align=AlignInstructConfig(),
        hint=HintInstructConfig(),
        revise=ReviseInstructConfig(),
        both_directions=True,
        seed=7,
        stage="stage1",
    )
    return replace(base, **changes)


@pytest.fixture(scope="module")
def pairs(
    freedict_corpus: Path, align_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[AlignedPair]:
    """The first 2,000 train pairs (cleaned, not deduplicated), aligned with eflomal, with
    the intersection's link statistics."""
    work = tmp_path_factory.mktemp("pairs")
    overrides = [f"corpus.path={freedict_corpus}/", "tokenizer=unused", "max_pairs=2000"]
    recipe = load_recipe("freedict", [*overrides, "clean.dedup=false"])
    plan = PairPlan(
        "de", "en", recipe, work, align_cache / "align", ("intersection", "union"),
        ("intersection",),
    )  # fmt: skip
    return list(read_split(prepare_pair(plan), "train", stats="train"))


def surface(pair: AlignedPair, link_set: str) -> set[tuple[str, str]]:
    return {
        (pair.src_words[i].text.lower(), pair.tgt_words[j].text.lower())
        for i, j in pair.links[link_set]
    }


def test_align_positives_linked_and_negatives_never(pairs: list[AlignedPair]) -> None:
    builder = InstructionBuilder(settings(), ["align"])
    labels = {" True": 0, " False": 0}
    for pair in pairs:
        views = {("de", "en"): pair, ("en", "de"): pair.flipped()}
        for sample in builder.samples(pair):
            view = views[sample.src, sample.tgt]
            xw, yw = ASSERTION.search(sample.prompt).groups()
            stated = (xw.lower(), yw.lower())
            labels[sample.answer] += 1
            if sample.answer == " True":
                positives = {
                    (view.src_words[i].text, view.tgt_words[j].text)
                    for i, j in qualifying_links(view, "intersection", 0.1)
                }
                assert (xw, yw) in positives
            else:
                assert sample.answer == " False"
                assert stated not in surface(view, "union")
                assert stated not in surface(view, "intersection")
    total = sum(labels.values())
    assert total > 3000
    assert 0.45 < labels[" True"] / total < 0.55


def test_builder_is_deterministic_and_seeded(pairs: list[AlignedPair]) -> None:
    kinds = ["mt", "align", "hint", "revise"]
    first = [s for p in pairs for s in InstructionBuilder(settings(), kinds).samples(p)]
    again = [s for p in pairs for s in InstructionBuilder(settings(), kinds).samples(p)]
    other = [s for p in pairs for s in InstructionBuilder(settings(seed=8), kinds).samples(p)]
    assert first == again
    assert first != other
    # A pair's samples do not depend on which pairs came before it (per-pair RNG), except
    # the Revise pool of wrong words, which is built from earlier sentences.
    mt_align = ["mt", "align"]
    tail = [s for p in pairs[1000:] for s in InstructionBuilder(settings(), mt_align).samples(p)]
    full = [s for p in pairs for s in InstructionBuilder(settings(), mt_align).samples(p)]
    assert full[-len(tail) :] == tail


def test_mt_both_directions_exact(pairs: list[AlignedPair]) -> None:
    pair = pairs[0]
    builder = InstructionBuilder(settings(ratios={"mt": 1.0}), ["mt"])
    de_en, en_de = list(builder.samples(pair))
    assert de_en.prompt == f"Translate from German to English.\nGerman: {pair.src}\nEnglish:"
    assert de_en.answer == f" {pair.tgt}"
    assert en_de.prompt == f"Translate from English to German.\nEnglish: {pair.tgt}\nGerman:"
    assert en_de.answer == f" {pair.src}"
    forward = InstructionBuilder(settings(both_directions=False), ["mt"])
    assert [(s.src, s.tgt) for s in forward.samples(pair)] == [("de", "en")]


def test_hint_pairs_are_links(pairs: list[AlignedPair]) -> None:
    builder = InstructionBuilder(settings(), ["hint"])
    hint_line = re.compile(r'\("([^"]*)", "([^"]*)"\)')
    checked = 0
    for pair in pairs[:300]:
        views = {("de", "en"): pair, ("en", "de"): pair.flipped()}
        for sample in builder.samples(pair):
            view = views[sample.src, sample.tgt]
            hints = hint_line.findall(sample.prompt.split("\n")[2])
            assert 1 <= len(hints) <= 3
            linked = {
                (view.src_words[i].text, view.tgt_words[j].text)
                for i, j in view.links["intersection"]
            }
            assert set(hints) <= linked
            assert sample.answer == f" {view.tgt}"
            checked += 1
    assert checked > 400


def test_revise_replaces_one_linked_word(pairs: list[AlignedPair]) -> None:
    builder = InstructionBuilder(settings(), ["revise"])
    answer = re.compile(r'^ The incorrectly translated word is "(.*)"\. It should be "(.*)"\.$')
    checked = 0
    for pair in pairs[:300]:
        views = {("de", "en"): pair, ("en", "de"): pair.flipped()}
        for sample in builder.samples(pair):
            view = views[sample.src, sample.tgt]
            wrong, right = answer.match(sample.answer).groups()
            revised = sample.prompt.rsplit(f"{NAMES[sample.tgt]}: ", 1)[1]
            assert revised != view.tgt
            assert wrong.lower() not in {w.text.lower() for w in view.tgt_words}
            assert right in {w.text for w in view.tgt_words}
            # Putting the right word back restores the reference exactly.
            index = next(k for k, w in enumerate(words(revised)) if w.text == wrong)
            w = words(revised)[index]
            assert revised[: w.start] + right + revised[w.end :] == view.tgt
            checked += 1
    assert checked > 400


def test_consistency_filter_only_removes_links(pairs: list[AlignedPair]) -> None:
    kept = removed = 0
    for pair in pairs:
        base = one_to_one_content_links(pair, "intersection")
        filtered = qualifying_links(pair, "intersection", 0.1)
        assert set(filtered) <= set(base)
        assert qualifying_links(pair, "intersection", 0.0) == base
        kept += len(filtered)
        removed += len(base) - len(filtered)
    assert kept > 0 and removed > 0


def test_fractional_ratio_draws_about_that_share(pairs: list[AlignedPair]) -> None:
    builder = InstructionBuilder(settings(ratios={"mt": 0.25}, both_directions=False), ["mt"])
    produced = sum(1 for p in pairs for _ in builder.samples(p))
    assert 0.2 * len(pairs) < produced < 0.3 * len(pairs)


def test_align_links_choose_the_positives(pairs: list[AlignedPair]) -> None:
    """`align.links.align: union` makes AlignInstruct state union links as true."""
    links = {"align": "union", "hint": "intersection", "revise": "intersection"}
    builder = InstructionBuilder(settings(links=links, align=AlignInstructConfig(1.0)), ["align"])
    outside = 0
    for pair in pairs[:500]:
        views = {("de", "en"): pair, ("en", "de"): pair.flipped()}
        for sample in builder.samples(pair):
            view = views[sample.src, sample.tgt]
            stated = ASSERTION.search(sample.prompt).groups()
            words_of = {(view.src_words[i].text, view.tgt_words[j].text) for i, j in
                        one_to_one_content_links(view, "union")}  # fmt: skip
            assert sample.answer == " True" and stated in words_of
            outside += stated not in {
                (view.src_words[i].text, view.tgt_words[j].text)
                for i, j in view.links["intersection"]
            }
    assert outside > 0  # some true statements are union links the intersection lacks
