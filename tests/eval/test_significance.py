"""Paired tests equal the `sacrebleu` command line's (`--paired-bs`, `--paired-ar`) on the
same files; COMET-style segment means go through the same sacreBLEU code."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.typed_config import ConfigError
from eval.significance import PairedSettings, paired_segment_tests, paired_text_tests

WORDS = [
    "the",
    "a",
    "house",
    "cat",
    "dog",
    "river",
    "tree",
    "sees",
    "runs",
    "quickly",
    "old",
    "young",
    "green",
    "small",
    "big",
    "over",
    "under",
    "near",
    "with",
    "without",
    "garden",
    "city",
    "bridge",
    "night",
    "morning",
    "eats",
    "drinks",
    "water",
]


def corpus(n: int, seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """References and three systems of decreasing error rate (asymmetric: the last is
    best, the middle one barely differs from the baseline)."""
    rng = random.Random(seed)
    refs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12))) for _ in range(n)]

    def noisy(rate: float) -> list[str]:
        return [
            " ".join(w if rng.random() > rate else rng.choice(WORDS) for w in r.split())
            for r in refs
        ]

    return refs, noisy(0.5), noisy(0.47), noisy(0.2)


def sacrebleu_cli(ref: Path, hyps: list[Path], test: str, n: int, seed: int) -> list[dict]:
    cli = Path(sys.executable).with_name("sacrebleu")
    flag = {"bs": ["--paired-bs", "--paired-bs-n"], "ar": ["--paired-ar", "--paired-ar-n"]}[test]
    out = subprocess.run(
        [cli, str(ref), "-i", *map(str, hyps), "-m", "bleu", "chrf", "--chrf-word-order", "2",
         "-tok", "13a", flag[0], flag[1], str(n), "-f", "json"],
        capture_output=True, text=True, check=True, env=dict(os.environ, SACREBLEU_SEED=str(seed)),
    )  # fmt: skip
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path], list[list[str]]]:
    folder = tmp_path_factory.mktemp("sig")
    refs, *systems = corpus(150, seed=4)
    ref = folder / "ref.en"
    ref.write_text("\n".join(refs) + "\n")
    paths = []
    for name, lines in zip(("base", "close", "better"), systems, strict=True):
        paths.append(folder / f"{name}.en")
        paths[-1].write_text("\n".join(lines) + "\n")
    return ref, paths, [refs, *systems]


@pytest.mark.integration
@pytest.mark.parametrize(("test", "n", "seed"), [("bs", 300, 7), ("ar", 400, 11)])
def test_equal_to_the_sacrebleu_command_line(files, test: str, n: int, seed: int) -> None:
    ref, paths, (refs, *systems) = files
    cli = sacrebleu_cli(ref, paths, test, n, seed)
    names = ["base", "close", "better"]
    ours = paired_text_tests(
        list(zip(names, systems, strict=True)), refs, "en", PairedSettings(test, n, seed)
    )
    for row, name in zip(cli, names, strict=True):
        for metric, cli_name in (("bleu", "BLEU"), ("chrf", "chrF2++")):
            theirs, mine = row[cli_name], ours[metric]["systems"][name]
            assert mine["score"] == theirs["score"]
            assert mine["p_value"] == theirs["p_value"]
            if test == "bs":  # the command line prints intervals for bs only
                assert (mine["mean"], mine["ci"]) == (theirs["mean"], theirs["ci"])
            else:
                assert mine["ci"] is not None and mine["ci"] > 0
    assert ours["bleu"]["systems"]["base"]["p_value"] is None
    # the clearly better system is significant, the one that barely differs is not
    assert (
        ours["bleu"]["systems"]["better"]["significant"]
        and ours["chrf"]["systems"]["better"]["significant"]
    )
    assert not ours["chrf"]["systems"]["close"]["significant"]
    assert (
        f"{test}:{n}" in ours["bleu"]["signature"] and f"seed:{seed}" in ours["bleu"]["signature"]
    )


def test_seed_and_resamples_change_the_draws(files) -> None:
    _, _, (refs, base, _, better) = files
    systems = [("base", base), ("better", better)]
    one = paired_text_tests(systems, refs, "en", PairedSettings("bs", 200, 1))
    again = paired_text_tests(systems, refs, "en", PairedSettings("bs", 200, 1))
    other = paired_text_tests(systems, refs, "en", PairedSettings("bs", 200, 2))
    assert one == again
    assert one["chrf"]["systems"]["better"]["mean"] != other["chrf"]["systems"]["better"]["mean"]


def test_segment_means_use_the_same_resamples(files) -> None:
    """A segment-mean metric (COMET's system score) through sacreBLEU's paired bootstrap:
    its interval comes from the same seeded index draws as BLEU's."""
    refs = files[2][0]
    rng = np.random.default_rng(3)
    base_scores = rng.normal(0.50, 0.1, len(refs)).tolist()
    better_scores = (np.asarray(base_scores) + rng.normal(0.05, 0.05, len(refs))).tolist()
    worse_scores = (np.asarray(base_scores) - rng.normal(0.0, 0.05, len(refs))).tolist()
    systems = [("base", base_scores), ("better", better_scores), ("noise", worse_scores)]
    result = paired_segment_tests(systems, "comet", PairedSettings("bs", 500, 5))
    assert result["systems"]["better"]["score"] == pytest.approx(100 * np.mean(better_scores))
    # the interval is sacreBLEU's: the 2.5%/97.5% resampled means of the same draws
    idx = np.random.default_rng(5).choice(len(refs), size=(500, len(refs)), replace=True)
    means = np.sort(100 * np.asarray(better_scores, dtype=np.float32)[idx].mean(1))
    expected = 0.5 * (means[-1 - 500 // 40] - means[500 // 40])
    assert result["systems"]["better"]["ci"] == pytest.approx(expected, rel=1e-5)  # float32 sums
    assert (
        result["systems"]["better"]["significant"] and result["systems"]["better"]["p_value"] < 0.01
    )
    assert not result["systems"]["noise"]["significant"]
    assert "comet-segment-mean" in result["signature"]


def test_bad_settings_are_listed() -> None:
    with pytest.raises(ConfigError) as err:
        PairedSettings("xx", -1, 0)  # type: ignore[arg-type]
    text = str(err.value)
    assert "'xx' is not bs or ar" in text and "--resamples" in text and "--seed" in text


def test_holm_matches_the_worked_example() -> None:
    """Holm (1979) step-down on the worked example of Wikipedia's "Holm-Bonferroni
    method" article: p = 0.01, 0.04, 0.03, 0.005 at alpha 0.05 rejects H1 and H4 only.
    By hand, sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1: 0.02, 0.03, 0.06, 0.04,
    made non-decreasing: 0.02, 0.03, 0.06, 0.06 (returned in the given order)."""
    from eval.significance import adjusted_p_values

    raw = [0.01, 0.04, 0.03, 0.005]
    holm = adjusted_p_values(raw, "holm")
    assert holm == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in holm] == [True, False, False, True]
    assert adjusted_p_values(raw, "bonferroni") == pytest.approx([0.04, 0.16, 0.12, 0.02])
    assert adjusted_p_values(raw, "none") == raw
    assert adjusted_p_values([0.5, 0.9], "holm") == pytest.approx([1.0, 1.0])  # capped at 1
    assert adjusted_p_values([], "holm") == []


def test_correction_decides_significance_over_directions() -> None:
    """Four directions with raw p-values of the example: uncorrected all four count,
    Holm two, Bonferroni two; the raw values stay."""
    from eval.significance import correct

    def tests(p_values: list[float]) -> dict:
        return {
            f"d{i}": {"bleu": {"systems": {
                "base": {"score": 10.0, "p_value": None, "significant": None},
                "sys": {"score": 12.0, "p_value": p, "significant": p < 0.05},
            }}}
            for i, p in enumerate(p_values)
        }  # fmt: skip

    for method, expected in (("none", 4), ("holm", 2), ("bonferroni", 2)):
        found = tests([0.01, 0.04, 0.03, 0.005])
        correct(found, "base", method)
        results = [d["bleu"]["systems"]["sys"] for d in found.values()]
        assert sum(r["significant"] for r in results) == expected, method
        assert [r["p_value"] for r in results] == [0.01, 0.04, 0.03, 0.005]
    with pytest.raises(ConfigError, match="--correction: 'sidak'"):
        PairedSettings(correction="sidak")


def test_text_tests_score_all_references() -> None:
    """With alternative references the paired test's scores are the multi-reference ones."""
    from sacrebleu.metrics import BLEU

    refs = ["the cat sat on the mat .", "a dog ran in the park ."]
    alts = [["there is a cat on the mat ."], []]
    hyp_a = ["there is a cat on the mat .", "a dog ran in a park ."]
    hyp_b = ["the cat is on a mat .", "the dog ran ."]
    settings = PairedSettings(resamples=50)
    found = paired_text_tests([("a", hyp_a), ("b", hyp_b)], refs, "en", settings, alts)
    streams = [refs, ["there is a cat on the mat .", None]]
    assert found["bleu"]["systems"]["a"]["score"] == BLEU().corpus_score(hyp_a, streams).score
    single = paired_text_tests([("a", hyp_a), ("b", hyp_b)], refs, "en", settings)
    assert found["bleu"]["systems"]["a"]["score"] > single["bleu"]["systems"]["a"]["score"]


@pytest.mark.parametrize("target", ["en", "zh"])
def test_tests_use_the_metrics_that_scores_json_records(target: str) -> None:
    """Each field of a scores.json signature (eval.scoring) is in the signature of the
    significance test on the same direction: one definition of the metrics serves both."""
    from eval.scoring import score_direction

    refs = ["the old dog sleeps", "a small cat runs near the river", "where is the green tree"]
    hyps = ["the dog sleeps", "a cat runs near the river", "where is the tree"]
    scored = score_direction(hyps, refs, target)
    tested = paired_text_tests(
        [("base", hyps), ("other", refs)], refs, target, PairedSettings("bs", 10, 1)
    )
    for metric in ("bleu", "chrf"):
        fields = scored["signatures"][metric].split("|")
        assert set(fields) <= set(tested[metric]["signature"].split("|")), metric
    assert f"tok:{'zh' if target == 'zh' else '13a'}" in scored["signatures"]["bleu"]
