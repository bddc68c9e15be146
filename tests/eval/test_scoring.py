"""Scores per direction: several references, off-target rate, COMET coverage in the
averages and tables."""

from __future__ import annotations

from sacrebleu.metrics import BLEU, CHRF

from eval.scoring import averages, reference_streams, score_direction, to_csv, to_markdown

REFS = ["I daren't go home.", "The dog sleeps in the garden.", "Where is the station?"]
ALTS = [["I'm scared to go home."], [], ["Where's the station?", "Which way to the station?"]]
HYPS = ["I'm scared to go home.", "The dog is sleeping in the garden.", "Where's the station?"]


def test_streams_pad_missing_alternatives_with_none() -> None:
    assert reference_streams(REFS, ALTS) == [
        REFS,
        ["I'm scared to go home.", None, "Where's the station?"],
        [None, None, "Which way to the station?"],
    ]
    assert reference_streams(REFS) == [REFS] == reference_streams(REFS, [[], [], []])


def test_bleu_and_chrf_score_against_every_reference() -> None:
    multi = score_direction(HYPS, REFS, "en", ALTS)
    single = score_direction(HYPS, REFS, "en")
    streams = reference_streams(REFS, ALTS)
    assert multi["bleu"] == round(BLEU().corpus_score(HYPS, streams).score, 2)
    assert multi["chrf"] == round(CHRF(word_order=2).corpus_score(HYPS, streams).score, 2)
    assert multi["bleu"] > single["bleu"] and multi["chrf"] > single["chrf"]
    assert multi["references"] == 3 and single["references"] == 1
    assert "nrefs:var" in multi["signatures"]["bleu"] and "nrefs:1" in single["signatures"]["bleu"]
    assert multi["off_target"] == 0.0 and multi["identified"] == {"en": 3}


def entry(group: str, bleu: float, off: float | None, comet: float, covered: bool) -> dict:
    return {"group": group, "sentences": 3, "bleu": bleu, "chrf": bleu, "off_target": off,
            "comet": comet, "comet_covered": covered}  # fmt: skip


DIRECTIONS = {
    "en-km": entry("en->X", 10.0, 20.0, 70.0, True),
    "en-ha": entry("en->X", 20.0, None, 60.0, True),
    "en-tt": entry("en->X", 30.0, 40.0, 10.0, False),
    "km-en": entry("X->en", 40.0, 5.0, 80.0, True),
}


def test_averages_leave_out_missing_rates_and_uncovered_comet() -> None:
    avg = averages(DIRECTIONS)
    assert avg["en->X"]["bleu"] == 20.0 and avg["en->X"]["directions"] == 3
    assert avg["en->X"]["off_target"] == 30.0 and avg["en->X"]["off_target_directions"] == 2
    assert avg["en->X"]["comet"] == 65.0 and avg["en->X"]["comet_directions"] == 2
    assert avg["all"]["comet"] == 70.0
    asked = averages(DIRECTIONS, comet_uncovered=True)
    assert asked["en->X"]["comet"] == 46.67 and asked["en->X"]["comet_directions"] == 3


def test_tables_show_na_and_the_uncovered_mark() -> None:
    avg = averages(DIRECTIONS)
    table = to_markdown(DIRECTIONS, avg)
    assert "| en-ha | en->X | 20.00 | 20.00 | 60.00 | n/a |" in table
    assert "| en-tt | en->X | 30.00 | 30.00 | 10.00† | 40.00 |" in table
    assert "| en->X | 3 | 20.00 | 20.00 | 65.00 (2) | 30.00 (2) |" in table
    assert "no label for the target language of en-ha" in table
    assert "en-tt; left out of the COMET averages" in table
    csv = to_csv(DIRECTIONS).splitlines()
    assert csv[0] == "direction,group,sentences,bleu,chrf,comet,off_target,comet_covered"
    assert csv[2] == "en-ha,en->X,3,20.0,20.0,60.0,n/a,True"
    asked = to_markdown(DIRECTIONS, averages(DIRECTIONS, True), comet_uncovered=True)
    assert "en-tt; included in the COMET averages" in asked and "46.67" in asked
